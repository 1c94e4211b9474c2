package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The suite is `make bench-load`: for each scenario it starts a fresh
// gateway (and a fresh Janus for the side-by-side rows), runs the load,
// stops them, and in the end prints one table and writes the JSON.

// scenario is one row group of the table.
type scenario struct {
	name     string
	calls    int
	roomSize int
	speakers int
	webrtc   int  // participants per room joining over WHIP
	whep     bool // the WebRTC participants that do not speak join over WHEP
	janus    bool // run the same load against Janus AudioBridge too
	// record rooms (the first ones) record automatically, and stream of
	// them stream to nginx-rtmp.
	record, stream int
	// perUnit, when set, names what each of units adds to the previous
	// row's load ("recording", "egress"): the report gives the CPU each
	// costs.
	perUnit string
	units   int
}

// scenarios is the list at scale: "full" is the target sizes,
// "small" a quick check that fits a shared machine.
func scenarios(scale string) []scenario {
	sizes, mixed, listeners := []int{100, 500, 1000}, 100, 300
	if scale == "small" {
		sizes, mixed, listeners = []int{20}, 10, 10
	}
	var list []scenario
	for _, n := range sizes {
		list = append(list, scenario{name: fmt.Sprintf("a. phone-only rooms of 10, %d callers", n),
			calls: n, roomSize: 10, speakers: 2, janus: true})
	}
	return append(list,
		scenario{name: fmt.Sprintf("b. mixed rooms 5 phones + 5 WebRTC, 2 speakers, %d participants", mixed),
			calls: mixed, roomSize: 10, speakers: 2, webrtc: 5, janus: true},
		// The listeners join over WHEP: they receive only.
		scenario{name: fmt.Sprintf("c. 1 WebRTC presenter + %d WebRTC listeners", listeners),
			calls: listeners + 1, roomSize: listeners + 1, speakers: 1, webrtc: listeners + 1, whep: true},
		// Twenty rooms with one speaking caller each, then the same with
		// every room recording, then with five of them streaming too.
		scenario{name: "d0. 20 rooms of 1 speaking caller", calls: 20, roomSize: 1, speakers: 1},
		scenario{name: "d1. d0 + 20 recordings", calls: 20, roomSize: 1, speakers: 1, record: 20,
			perUnit: "recording", units: 20},
		scenario{name: "d2. d1 + 5 RTMP egresses to nginx-rtmp", calls: 20, roomSize: 1, speakers: 1, record: 20,
			stream: 5, perUnit: "egress", units: 5},
	)
}

// suiteMain runs the scenarios.
func suiteMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mediagate-load suite", flag.ContinueOnError)
	bin := fs.String("bin", "bin/mediagate", "the mediagate binary to measure")
	janusBin := fs.String("janus", "janus", "the Janus binary (empty: skip the Janus rows)")
	out := fs.String("json", "bench/results/latest.json", "where to write the results")
	scale := fs.String("scale", "small", "small (20 callers) or full (100, 500, 1000 callers)")
	duration := fs.Duration("duration", 10*time.Second, "measurement window per run")
	warmup := fs.Duration("warmup", 3*time.Second, "time after the last join before measuring")
	only := fs.String("only", "", "run only the scenarios whose name starts with this (e.g. \"a.\", \"d\")")
	sharedRTP := fs.Bool("shared-rtp", true, "run the gateway with rtp.shared (calls on one RTP port pair)")
	profileDir := fs.String("profile", "", "directory for a CPU profile of the gateway per mediagate run (its measurement window)")
	var gatewayEnv []string
	fs.Func("set", "a `MEDIAGATE_KEY=value` setting for the gateway under test, e.g. MEDIAGATE_WEBRTC_OPUS_APPLICATION=lowdelay (repeatable)",
		func(kv string) error {
			if k, _, ok := strings.Cut(kv, "="); !ok || !strings.HasPrefix(k, "MEDIAGATE_") {
				return fmt.Errorf("%q is not MEDIAGATE_KEY=value", kv)
			}
			gatewayEnv = append(gatewayEnv, kv)
			return nil
		})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scale != "small" && *scale != "full" {
		return fmt.Errorf("-scale %q: small or full", *scale)
	}
	// The processes run in temporary directories: resolve the paths first.
	gw, err := exec.LookPath(*bin)
	if err == nil {
		gw, err = filepath.Abs(gw)
	}
	if err != nil {
		return fmt.Errorf("-bin: %w", err)
	}
	*bin = gw
	if *janusBin != "" {
		if *janusBin, err = exec.LookPath(*janusBin); err != nil {
			return fmt.Errorf("-janus: %w (scripts/bootstrap --bench installs it)", err)
		}
	}
	if *profileDir != "" {
		if err := os.MkdirAll(*profileDir, 0o755); err != nil {
			return err
		}
	}
	var reps []Report
	for _, sc := range scenarios(*scale) {
		if !strings.HasPrefix(sc.name, *only) {
			continue
		}
		o := options{scenario: sc.name, calls: sc.calls, roomSize: sc.roomSize, speakers: sc.speakers,
			webrtcPerRoom: sc.webrtc, whepListeners: sc.whep,
			host: "127.0.0.1", numberBase: 7000, rate: 50, warmup: *warmup, duration: *duration,
			probeEvery: time.Second}
		o.record, o.stream = sc.record, sc.stream
		o.sharedRTP, o.gatewayEnv = *sharedRTP, gatewayEnv
		if *profileDir != "" {
			o.profileOut = filepath.Join(*profileDir, profileName(sc.name))
		}
		rep, err := runMediagate(ctx, *bin, o)
		if err != nil {
			return fmt.Errorf("%s: mediagate: %w", sc.name, err)
		}
		if rep.RecordingsActive != sc.record || rep.EgressesLive != sc.stream {
			return fmt.Errorf("%s: %d recordings and %d egresses live, want %d and %d", sc.name,
				rep.RecordingsActive, rep.EgressesLive, sc.record, sc.stream)
		}
		if sc.perUnit != "" && len(reps) > 0 {
			prev := reps[len(reps)-1]
			each := round2((rep.GatewayCPUPct - prev.GatewayCPUPct) / float64(sc.units))
			rep.CPUPctPerUnit, rep.Unit = &each, sc.perUnit
		}
		reps = append(reps, rep)
		if sc.janus && *janusBin != "" {
			rep, err := runJanus(ctx, *janusBin, o)
			if err != nil {
				logf("%s: janus: %v", sc.name, err)
				rep = Report{Scenario: sc.name, Target: "janus", Participants: sc.calls,
					NotMeasured: err.Error()}
			}
			reps = append(reps, rep)
		}
	}
	setJanusRatios(reps)
	printTable(os.Stdout, reps)
	if *profileDir != "" {
		logf("CPU profiles of the gateway in %s (go tool pprof -top %s FILE)", *profileDir, *bin)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return writeJSON(*out, reps)
}

// runMediagate starts bin with rooms bench000.. on numbers numberBase..,
// runs o against it and stops it.
func runMediagate(ctx context.Context, bin string, o options) (rep Report, err error) {
	dir, err := os.MkdirTemp("", "mediagate-load-")
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
	rtmpPort := 0
	if o.stream > 0 {
		port, stop, err := startNginx(ctx, dir)
		if err != nil {
			return Report{}, err
		}
		defer stop()
		rtmpPort = port
	}
	rooms := map[string]map[string]any{}
	numbers := map[string]map[string]string{}
	for k := range (o.calls + o.roomSize - 1) / o.roomSize {
		id := fmt.Sprintf("bench%03d", k)
		// Open: WHIP participants join without a token.
		room := map[string]any{"name": id, "open": true}
		if k < o.record {
			room["auto_record"] = true
		}
		if k < o.stream {
			room["auto_stream"] = []map[string]string{{"name": "nginx",
				"url": fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", rtmpPort, id)}}
		}
		rooms[id] = room
		numbers[strconv.Itoa(o.numberBase+k)] = map[string]string{"room": id}
	}
	rj, _ := json.Marshal(rooms)
	nj, _ := json.Marshal(numbers)
	env := []string{"MEDIAGATE_ROOMS=" + string(rj), "MEDIAGATE_DIALIN_NUMBERS=" + string(nj),
		"MEDIAGATE_STORAGE_DIR=" + filepath.Join(dir, "data"),
		"MEDIAGATE_HTTP_LISTEN=127.0.0.1:0", "MEDIAGATE_SIP_LISTEN=127.0.0.1:0", "MEDIAGATE_WEBRTC_UDP_PORT=0",
		"MEDIAGATE_RTP_PORT_MIN=20000", "MEDIAGATE_RTP_PORT_MAX=29999",
		fmt.Sprintf("MEDIAGATE_RTP_SHARED=%t", o.sharedRTP),
		// One source address places every call: the abuse guard would ban
		// it, and the benchmark measures the media path.
		"MEDIAGATE_SIP_GUARD_ENABLED=false",
		// nginx-rtmp listens on loopback.
		"MEDIAGATE_STREAM_ALLOW_PRIVATE=true"}
	env = append(env, o.gatewayEnv...) // later entries win
	if o.profileOut != "" {
		port, err := freePort()
		if err != nil {
			return Report{}, err
		}
		o.pprofURL = fmt.Sprintf("http://127.0.0.1:%d", port)
		env = append(env, fmt.Sprintf("MEDIAGATE_HTTP_PPROF_LISTEN=127.0.0.1:%d", port))
	}
	g, err := startGateway(ctx, bin, dir, env)
	if err != nil {
		return Report{}, err
	}
	defer g.stop()
	o.target, o.gatewayPID, o.roomPrefix = "mediagate", g.cmd.Process.Pid, "bench"
	o.sipAddr, o.httpURL = "127.0.0.1:"+g.sipPort, "http://"+g.addr
	return runTarget(ctx, o)
}

// profileName is the profile file of a scenario: its name in letters,
// digits and dashes ("a. phone-only rooms of 10, 100 callers" →
// a-phone-only-rooms-of-10-100-callers.pprof).
func profileName(scenario string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(scenario) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	return b.String() + ".pprof"
}

// gatewayProc is a started mediagate.
type gatewayProc struct {
	cmd           *exec.Cmd
	addr, sipPort string
	done          chan struct{} // closed when the process has exited
}

// startGateway runs bin serve in dir with env, logging to dir/mediagate.log,
// and waits up to 30 s for its ready line.
func startGateway(ctx context.Context, bin, dir string, env []string) (*gatewayProc, error) {
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	p, line, err := startLogged(ctx, cmd, filepath.Join(dir, "mediagate.log"), "mediagate ready")
	if err != nil {
		return nil, err
	}
	g := &gatewayProc{cmd: cmd, done: p, addr: field(line, "addr"), sipPort: field(line, "sip_port")}
	if g.addr == "" || g.sipPort == "" {
		g.stop()
		return nil, fmt.Errorf("ready line without addr or sip_port: %s", line)
	}
	return g, nil
}

// stop ends the gateway: SIGINT (stop without draining), then SIGKILL
// after 10 s.
func (g *gatewayProc) stop() { stopProcess(g.cmd, g.done) }

// stopProcess sends SIGINT to cmd's process and SIGKILL when it has not
// exited (done closed) within 10 s.
func stopProcess(cmd *exec.Cmd, done chan struct{}) {
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
