package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mediagate/mediagate/api"
)

// keysUsage is the usage of `mediagate keys`.
const keysUsage = `usage:
  mediagate keys new                          make a bootstrap key and its auth.admin_keys line (offline)
  mediagate keys create --name N --role admin|viewer --tenant T [--json]
                                              make a key through the admin API; prints it once
  mediagate keys ls [--json]                  list the keys the caller manages
  mediagate keys revoke ID                    revoke a key: refused from now on
The admin API commands take --server URL (default $MEDIAGATE_SERVER, else
http://127.0.0.1:8080) and the caller's key from MEDIAGATE_API_KEY.
`

// keyInfo is a key as the admin API describes it (GET /api/v1/keys).
type keyInfo struct {
	Key       string     `json:"key,omitempty"` // only in the answer to create
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Tenant    string     `json:"tenant"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Bootstrap bool       `json:"bootstrap,omitempty"`
}

// keysCommand runs `mediagate keys ...`: new makes a bootstrap key
// locally; create, ls and revoke manage keys through the admin API.
func keysCommand(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "new":
		err = keysNew(args[1:], stdout)
	case "create":
		err = keysCreate(args[1:], environ, stdout, stderr)
	case "ls", "list":
		err = keysList(args[1:], environ, stdout, stderr)
	case "revoke":
		err = keysRevoke(args[1:], environ, stdout, stderr)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return exitCode("keys", args[0], keysUsage, err, stderr)
}

// keysNew prints a new bootstrap key and its hash line.
func keysNew(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: keys new takes no arguments", errUsage)
	}
	key, hash := api.NewAdminKey()
	fmt.Fprintf(stdout, `API key (shown once; give it to the client, e.g. as MEDIAGATE_API_KEY):
  %s
Add its hash to auth.admin_keys in the configuration (or MEDIAGATE_AUTH_ADMIN_KEYS):
  - "%s"
`, key, hash)
	return nil
}

func keysCreate(args, environ []string, stdout, stderr io.Writer) error {
	fs := commandFlags("keys", "create", stderr)
	server := serverFlag(fs)
	name := fs.String("name", "", "what the key is for, e.g. \"billing export\" (required)")
	role := fs.String("role", "", "admin (everything) or viewer (reads only) (required)")
	tenant := fs.String("tenant", "", "the tenant the key reaches, or * for all (admins only) (required)")
	asJSON := fs.Bool("json", false, "print the admin API's JSON answer")
	rest, err := parseInterspersed(fs, args)
	switch {
	case err != nil:
		return flagErr(err)
	case len(rest) > 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	case *name == "" || *role == "" || *tenant == "":
		return fmt.Errorf("%w: --name, --role and --tenant are required", errUsage)
	}
	c, err := newAdminClient(*server, environ)
	if err != nil {
		return err
	}
	var k keyInfo
	body := map[string]string{"name": *name, "role": *role, "tenant": *tenant}
	if err := c.do(context.Background(), "POST", "/api/v1/keys", body, &k); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, k)
	}
	fmt.Fprintf(stdout, `API key (shown once; give it to the client, e.g. as MEDIAGATE_API_KEY):
  %s
ID:     %s
Name:   %s
Role:   %s
Tenant: %s
`, k.Key, k.ID, k.Name, k.Role, k.Tenant)
	return nil
}

func keysList(args, environ []string, stdout, stderr io.Writer) error {
	fs := commandFlags("keys", "ls", stderr)
	server := serverFlag(fs)
	asJSON := fs.Bool("json", false, "print the admin API's JSON answer")
	rest, err := parseInterspersed(fs, args)
	switch {
	case err != nil:
		return flagErr(err)
	case len(rest) > 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, rest[0])
	}
	c, err := newAdminClient(*server, environ)
	if err != nil {
		return err
	}
	var keys []keyInfo
	if err := c.do(context.Background(), "GET", "/api/v1/keys", nil, &keys); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, keys)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tTENANT\tCREATED\tBY\tREVOKED")
	for _, k := range keys {
		created, by, revoked := "-", k.CreatedBy, "-"
		if k.CreatedAt != nil {
			created = k.CreatedAt.UTC().Format(time.RFC3339)
		}
		if k.Bootstrap {
			by = "config"
		}
		if k.RevokedAt != nil {
			revoked = k.RevokedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%q\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, k.Tenant, created, by, revoked)
	}
	return tw.Flush()
}

func keysRevoke(args, environ []string, stdout, stderr io.Writer) error {
	fs := commandFlags("keys", "revoke", stderr)
	server := serverFlag(fs)
	rest, err := parseInterspersed(fs, args)
	switch {
	case err != nil:
		return flagErr(err)
	case len(rest) != 1:
		return fmt.Errorf("%w: keys revoke takes one key ID (the ID column of keys ls, not the key)", errUsage)
	case strings.HasPrefix(rest[0], api.AdminKeyPrefix):
		// Not echoed: it is a key.
		return fmt.Errorf("%w: that is a key, not its ID; `mediagate keys ls` shows the IDs", errUsage)
	}
	c, err := newAdminClient(*server, environ)
	if err != nil {
		return err
	}
	if err := c.do(context.Background(), "DELETE", "/api/v1/keys/"+url.PathEscape(rest[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "revoked key %s\n", rest[0])
	return nil
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
