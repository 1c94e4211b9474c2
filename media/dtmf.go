package media

import (
	"fmt"
	"math"
)

// Digit is one of the 16 DTMF keys. Its value is the RFC 4733 §3.2 event code
// (0–9 for the numbers, 10 for *, 11 for #, 12–15 for A–D), so the same value
// travels in telephone-event packets, comes out of the in-band detector and
// drives the tone generator.
type Digit uint8

// The DTMF keys, named so code reads as the keypad does.
const (
	Digit0 Digit = iota
	Digit1
	Digit2
	Digit3
	Digit4
	Digit5
	Digit6
	Digit7
	Digit8
	Digit9
	DigitStar
	DigitPound
	DigitA
	DigitB
	DigitC
	DigitD
)

// NumDigits is the number of DTMF keys; event codes at or above it are other
// telephone events (flash, fax tones) that mediagate does not treat as keys.
const NumDigits = 16

const digitChars = "0123456789*#ABCD"

// Valid reports whether d is one of the 16 keys.
func (d Digit) Valid() bool { return d < NumDigits }

// Rune returns the key's character ('0'–'9', '*', '#', 'A'–'D'), or '?' for
// an invalid value, so a digit can be appended to a dial string.
func (d Digit) Rune() rune {
	if !d.Valid() {
		return '?'
	}
	return rune(digitChars[d])
}

// String returns the key as it is printed on the keypad, for logs and IVR
// menus.
func (d Digit) String() string {
	if !d.Valid() {
		return fmt.Sprintf("Digit(%d)", uint8(d))
	}
	return digitChars[d : d+1]
}

// ParseDigit turns a keypad character into a Digit. Lower-case a–d are
// accepted because dial strings from users and SIP INFO bodies use both.
func ParseDigit(r rune) (Digit, error) {
	switch {
	case r >= '0' && r <= '9':
		return Digit(r - '0'), nil
	case r == '*':
		return DigitStar, nil
	case r == '#':
		return DigitPound, nil
	case r >= 'A' && r <= 'D':
		return DigitA + Digit(r-'A'), nil
	case r >= 'a' && r <= 'd':
		return DigitA + Digit(r-'a'), nil
	}
	return 0, fmt.Errorf("%w: %q", ErrInvalidDigit, r)
}

// The DTMF frequency grid (ITU-T Q.23): each key is one low-group (row) tone
// plus one high-group (column) tone.
var (
	dtmfRowHz = [4]int{697, 770, 852, 941}
	dtmfColHz = [4]int{1209, 1336, 1477, 1633}
)

// digitAt maps a keypad position (row, column) to its digit.
var digitAt = [4][4]Digit{
	{Digit1, Digit2, Digit3, DigitA},
	{Digit4, Digit5, Digit6, DigitB},
	{Digit7, Digit8, Digit9, DigitC},
	{DigitStar, Digit0, DigitPound, DigitD},
}

// position returns the keypad row and column of a valid digit.
func (d Digit) position() (row, col int) {
	for r := range digitAt {
		for c := range digitAt[r] {
			if digitAt[r][c] == d {
				return r, c
			}
		}
	}
	return -1, -1
}

// Frequencies returns the low (row) and high (column) tone of the key in Hz,
// or 0, 0 for an invalid digit.
func (d Digit) Frequencies() (low, high int) {
	r, c := d.position()
	if r < 0 {
		return 0, 0
	}
	return dtmfRowHz[r], dtmfColHz[c]
}

// DTMFTone writes the dual tone of digit d at sample rate rate into dst, as
// the samples offset, offset+1, … of a tone that started at sample 0. Calling
// it frame after frame with offset advanced by len(dst) gives one continuous
// tone without clicks at frame edges, which is what an in-band DTMF sender
// (IVR prompts, tests) needs.
//
// amp is the peak of the combined signal as a fraction of full scale (0..1);
// each of the two tones gets amp/2, so the sum never clips. An invalid digit
// or a non-positive rate writes silence, so a caller that validated the digit
// with ParseDigit never meets that case. It does not allocate.
func DTMFTone(d Digit, rate int, dst []int16, offset int, amp float64) {
	low, high := d.Frequencies()
	if low == 0 || rate <= 0 {
		clear(dst)
		return
	}
	a := math.Max(0, math.Min(amp, 1)) * 32767 / 2
	// The grid frequencies are whole hertz, so the phase (f·n mod rate)/rate
	// is exact in integers however long the tone has been playing.
	r := int64(rate)
	pl := int64(low) * int64(offset) % r
	ph := int64(high) * int64(offset) % r
	if pl < 0 {
		pl += r
	}
	if ph < 0 {
		ph += r
	}
	w := 2 * math.Pi / float64(rate)
	for i := range dst {
		v := a * (math.Sin(w*float64(pl)) + math.Sin(w*float64(ph)))
		dst[i] = int16(math.Round(v))
		pl = (pl + int64(low)) % r
		ph = (ph + int64(high)) % r
	}
}
