package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Starting Janus for the side-by-side rows, configured as
// ../shared/TESTING.md says: Debian's janus with its own config folder,
// only the audiobridge plugin and the http transport (on 127.0.0.1), ICE
// restricted to lo.

// janusLib is where Debian's janus package keeps its modules.
const janusLib = "/usr/lib/x86_64-linux-gnu/janus"

// janusConfig writes the configuration into dir for an HTTP API on port.
// janusICEInterface is where Janus gathers ICE candidates: the suite's
// namespace interface (netns.go), or lo outside it (where Janus then
// offers none, so only plain RTP participants work).
func janusICEInterface() string {
	if inNetns() {
		return benchIface
	}
	return "lo"
}

func janusConfig(dir string, port int) error {
	disable := func(kind, keep string) string {
		files, _ := filepath.Glob(filepath.Join(janusLib, kind, "*.so"))
		var names []string
		for _, f := range files {
			if b := filepath.Base(f); b != keep {
				names = append(names, b)
			}
		}
		return strings.Join(names, ",")
	}
	files := map[string]string{
		"janus.jcfg": fmt.Sprintf(`general: {
	configs_folder = "%[1]s"
	plugins_folder = "%[2]s/plugins"
	transports_folder = "%[2]s/transports"
	events_folder = "%[2]s/events"
	loggers_folder = "%[2]s/loggers"
	debug_level = 4
	admin_secret = "janusoverlord"
}
media: {
	rtp_port_range = "40000-49999"
}
nat: {
	ice_enforce_list = "%[7]s"
}
plugins: {
	disable = "%[3]s"
}
transports: {
	disable = "%[4]s"
}
loggers: {
	disable = "%[5]s"
}
events: {
	broadcast = false
	disable = "%[6]s"
}
`, dir, janusLib, disable("plugins", "libjanus_audiobridge.so"), disable("transports", "libjanus_http.so"),
			disable("loggers", ""), disable("events", ""), janusICEInterface()),
		"janus.transport.http.jcfg": fmt.Sprintf(`general: {
	base_path = "/janus"
	http = true
	port = %d
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
`, port),
		// Plain RTP participants get their ports from this range, on
		// loopback: below Linux's ephemeral ports (32768-60999), where the
		// generator's own sockets are, and above mediagate's 20000-29999.
		"janus.plugin.audiobridge.jcfg": `general: {
	local_ip = "127.0.0.1"
	rtp_port_range = "30000-32767"
}
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runJanus starts janus (bin) with a fresh configuration, runs o against
// it as plain RTP participants and stops it.
func runJanus(ctx context.Context, bin string, o options) (rep Report, err error) {
	dir, err := os.MkdirTemp("", "mediagate-load-janus-")
	if err != nil {
		return Report{}, err
	}
	defer func() {
		// A failed run keeps its directory (configuration, logs).
		if err == nil {
			_ = os.RemoveAll(dir)
		} else {
			err = fmt.Errorf("%w (logs in %s)", err, dir)
		}
	}()
	port, err := freePort()
	if err != nil {
		return Report{}, err
	}
	if err := janusConfig(dir, port); err != nil {
		return Report{}, err
	}
	cmd := exec.Command(bin, "-F", dir, "-o")
	cmd.Dir = dir
	done, _, err := startLogged(ctx, cmd, filepath.Join(dir, "janus.log"), "HTTP webserver started")
	if err != nil {
		return Report{}, err
	}
	defer stopProcess(cmd, done)
	o.target, o.gatewayPID = "janus", cmd.Process.Pid
	o.httpURL = fmt.Sprintf("http://127.0.0.1:%d/janus", port)
	return runTarget(ctx, o)
}
