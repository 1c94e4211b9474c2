package main

import (
	"fmt"
	"io"

	"github.com/mediagate/mediagate/api"
)

// keysCommand runs `mediagate keys ...`. For now it makes admin API keys
// locally; issue [4] adds keys managed through the admin API.
func keysCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "new" {
		fmt.Fprintln(stderr, "usage: mediagate keys new")
		return exitUsage
	}
	key, hash := api.NewAdminKey()
	fmt.Fprintf(stdout, `API key (shown once; give it to the client, e.g. as MEDIAGATE_API_KEY):
  %s
Add its hash to auth.admin_keys in the configuration (or MEDIAGATE_AUTH_ADMIN_KEYS):
  - "%s"
`, key, hash)
	return exitOK
}
