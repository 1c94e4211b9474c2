package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// roomsUsage is the usage of `mediagate rooms`.
const roomsUsage = `usage:
  mediagate rooms ls [--json]         the rooms configured or open: tenant, the node a room
                                      is open on, locked, participants
  mediagate rooms get ROOM [--json]   one room and its participants: kind, speaking,
                                      muted, level, joined
  mediagate rooms lock|unlock ROOM    refuse (allow again) new participants in an open room
  mediagate rooms mute|unmute ROOM PARTICIPANT
                                      mute (unmute) a participant (its ID, from rooms get)
  mediagate rooms invite ROOM [--listen] [--present] [--name N] [--identity ID] [--ttl D]
                                      an invitation to the room's join page: a link with a
                                      join token in its fragment, valid for --ttl (default
                                      the node's auth.page_token_ttl); --listen invites to
                                      listen only, --present to present video too
The commands take --server URL (default $MEDIAGATE_SERVER, else
http://127.0.0.1:8080) and the caller's key from MEDIAGATE_API_KEY.
`

// roomsCommand runs `mediagate rooms ...`: a node's rooms through its
// admin API.
func roomsCommand(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, roomsUsage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "ls", "list":
		err = roomsList(args[1:], environ, stdout, stderr)
	case "get", "show":
		err = roomsGet(args[1:], environ, stdout, stderr)
	case "lock", "unlock":
		err = roomsLock(args[0], args[1:], environ, stdout, stderr)
	case "mute", "unmute":
		err = roomsMute(args[0], args[1:], environ, stdout, stderr)
	case "invite":
		err = roomsInvite(args[1:], environ, stdout, stderr)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return exitCode("rooms", args[0], roomsUsage, err, stderr)
}

// roomPath is the admin API path of room, with rest after it.
func roomPath(room, rest string) string {
	return "/api/v1/rooms/" + url.PathEscape(room) + rest
}

// cliRoom and cliParticipant are what the admin API answers.
type cliRoom struct {
	ID           string           `json:"id"`
	Name         string           `json:"name,omitempty"`
	Tenant       string           `json:"tenant"`
	Configured   bool             `json:"configured"`
	Open         bool             `json:"open"`
	Node         string           `json:"node,omitempty"`
	Locked       bool             `json:"locked"`
	Count        int              `json:"participant_count"`
	Participants []cliParticipant `json:"participants,omitempty"`
}

type cliParticipant struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Speaking bool      `json:"speaking"`
	Muted    bool      `json:"muted"`
	Level    int       `json:"level"`
	Joined   time.Time `json:"joined_at"`
}

// state is how the table shows whether a room is open, and where.
func (r cliRoom) state() string {
	switch {
	case !r.Open:
		return "closed"
	case r.Node != "":
		return "open on " + r.Node
	default:
		return "open"
	}
}

func roomsList(args, environ []string, stdout, stderr io.Writer) error {
	fs := commandFlags("rooms", "ls", stderr)
	asJSON := fs.Bool("json", false, "print the rooms as a JSON array")
	_, c, err := roomsArgs(fs, args, environ, 0, "rooms ls takes no arguments (rooms get ROOM shows one)")
	if err != nil {
		return err
	}
	var all []cliRoom
	if err := c.do(context.Background(), "GET", "/api/v1/rooms", nil, &all); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, all)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROOM\tNAME\tTENANT\tSTATE\tLOCKED\tPARTICIPANTS\tCONFIGURED")
	for _, r := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, dash(r.Name), dash(r.Tenant), r.state(),
			yesNo(r.Locked), r.Count, yesNo(r.Configured))
	}
	return tw.Flush()
}

func roomsGet(args, environ []string, stdout, stderr io.Writer) error {
	fs := commandFlags("rooms", "get", stderr)
	asJSON := fs.Bool("json", false, "print the room as JSON")
	rest, c, err := roomsArgs(fs, args, environ, 1, "rooms get takes one room")
	if err != nil {
		return err
	}
	var r cliRoom
	if err := c.do(context.Background(), "GET", roomPath(rest[0], ""), nil, &r); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, r)
	}
	fmt.Fprintf(stdout, "room %s", r.ID)
	if r.Name != "" {
		fmt.Fprintf(stdout, " (%s)", r.Name)
	}
	fmt.Fprintf(stdout, ": %s, %s, %d participants\n", r.state(), map[bool]string{true: "locked", false: "not locked"}[r.Locked], r.Count)
	if len(r.Participants) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTICIPANT\tNAME\tKIND\tSPEAKING\tMUTED\tLEVEL\tJOINED")
	for _, p := range r.Participants {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d dBov\t%s\n", p.ID, dash(p.Name), p.Kind, yesNo(p.Speaking),
			yesNo(p.Muted), p.Level, p.Joined.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

// roomsLock runs rooms lock and rooms unlock (verb).
func roomsLock(verb string, args, environ []string, stdout, stderr io.Writer) error {
	rest, c, err := roomsArgs(commandFlags("rooms", verb, stderr), args, environ, 1, "rooms "+verb+" takes one room")
	if err != nil {
		return err
	}
	if err := c.do(context.Background(), "POST", roomPath(rest[0], "/"+verb), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "room %s %sed\n", rest[0], verb)
	return nil
}

// roomsMute runs rooms mute and rooms unmute (verb).
func roomsMute(verb string, args, environ []string, stdout, stderr io.Writer) error {
	rest, c, err := roomsArgs(commandFlags("rooms", verb, stderr), args, environ, 2,
		"rooms "+verb+" takes a room and a participant")
	if err != nil {
		return err
	}
	path := roomPath(rest[0], "/participants/"+url.PathEscape(rest[1])+"/"+verb)
	if err := c.do(context.Background(), "POST", path, nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "participant %s of room %s %sd\n", rest[1], rest[0], verb)
	return nil
}

func roomsInvite(args, environ []string, stdout, stderr io.Writer) error {
	fs := commandFlags("rooms", "invite", stderr)
	listen := fs.Bool("listen", false, "invite to listen only (WHEP), not to speak")
	present := fs.Bool("present", false, "allow the invitee's video to become the room's presenter video")
	name := fs.String("name", "", "the invitee's display name")
	identity := fs.String("identity", "", "who the invitation is for, kept in the token (default --name, else invitee-<random>)")
	ttl := fs.Duration("ttl", 0, "how long the invitation stays valid, e.g. 2h (default the node's auth.page_token_ttl)")
	rest, c, err := roomsArgs(fs, args, environ, 1, "rooms invite takes one room")
	switch {
	case err != nil:
		return err
	case *ttl < 0 || *ttl%time.Second != 0:
		return fmt.Errorf("%w: --ttl must be a positive number of whole seconds", errUsage)
	case *listen && *present:
		return fmt.Errorf("%w: --listen and --present exclude each other: a listener sends no video", errUsage)
	}
	who := *identity
	switch {
	case who == "" && *name != "":
		who = *name
	case who == "":
		who = fmt.Sprintf("invitee-%08x", rand.Uint32())
	}
	req := map[string]any{
		"identity":    who,
		"name":        *name,
		"grants":      map[string]bool{"publish": !*listen, "listen": true, "present": *present},
		"ttl_seconds": int(*ttl / time.Second),
	}
	var res struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := c.do(context.Background(), "POST", roomPath(rest[0], "/tokens"), req, &res); err != nil {
		return err
	}
	link := strings.TrimSuffix(c.base.String(), "/") + "/r/" + url.PathEscape(rest[0]) + "#token=" + url.QueryEscape(res.Token)
	fmt.Fprintf(stdout, "%s\nvalid until %s\n", link, res.ExpiresAt.Local().Format(time.DateTime+" MST"))
	return nil
}

// roomsArgs adds --server to fs, parses args with it and returns the n
// positional arguments and a client for the server; a usage error saying
// wrong when there are not n.
func roomsArgs(fs *flag.FlagSet, args, environ []string, n int, wrong string) ([]string, *adminClient, error) {
	server := serverFlag(fs)
	rest, err := parseInterspersed(fs, args)
	switch {
	case err != nil:
		return nil, nil, flagErr(err)
	case len(rest) != n:
		return nil, nil, fmt.Errorf("%w: %s", errUsage, wrong)
	}
	c, err := newAdminClient(*server, environ)
	return rest, c, err
}

// yesNo is how the tables show a flag.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
