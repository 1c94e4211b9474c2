package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// The suite runs in a network namespace of its own: nothing it starts can
// reach or disturb the network, and Janus gets an address it gathers ICE
// candidates on. Janus (libnice) never offers a candidate on lo, whatever
// its ice_enforce_list says, so its WebRTC participants could not connect
// on loopback; in the namespace a veth pair holds benchAddr (local to the
// namespace, so its traffic stays on the loopback path) and Janus gathers
// there.

const (
	// netnsEnv marks the suite running inside its namespace.
	netnsEnv = "MEDIAGATE_LOAD_NETNS"
	// benchIface holds benchAddr in the namespace.
	benchIface = "mgload0"
	benchAddr  = "10.99.0.1"
)

// inNetns reports whether the suite runs in its namespace.
func inNetns() bool { return os.Getenv(netnsEnv) != "" }

// reexecInNetns runs this program with args again in a new network
// namespace with lo and the veth pair up, and returns its error. It needs
// root or unprivileged user namespaces (then mapped to root), and
// unshare (util-linux) and ip (iproute2), which scripts/bootstrap
// installs.
func reexecInNetns(args []string) error {
	unshare, err := exec.LookPath("unshare")
	if err == nil {
		_, err = exec.LookPath("ip")
	}
	if err != nil {
		return fmt.Errorf("the suite runs in a network namespace of its own: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ns := []string{"--net"}
	if os.Geteuid() != 0 {
		ns = append(ns, "--map-root-user")
	}
	setup := fmt.Sprintf(`ip link set lo up && ip link add %[1]s type veth peer name %[1]sp && `+
		`ip addr add %[2]s/24 dev %[1]s && ip link set %[1]s up && ip link set %[1]sp up && exec "$0" "$@"`,
		benchIface, benchAddr)
	cmd := exec.Command(unshare, append(append(ns, "--", "sh", "-c", setup, self), args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	// The suite dies with this process (Ctrl-C, a timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return fmt.Errorf("the suite in its network namespace exited with %d", ee.ExitCode())
	}
	return err
}
