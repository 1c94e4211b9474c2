//go:build !linux

package main

import "io"

// isTerminal reports false off Linux: progress is shown as plain lines.
func isTerminal(io.Writer) bool { return false }
