// Command mediagate-load is the load generator of `make bench-load`: it
// places N concurrent participants in rooms of a chosen size, each sending
// 20 ms PCMU frames (speakers a tone, the rest G.711 silence), and measures
// from outside the gateway what an operator sizes a machine by: the
// gateway's CPU per participant (from /proc/PID/stat), its RSS per
// participant, mixer late ticks (mediagate's /metrics), packet loss (RTP
// sequence gaps), call setup (INVITE → 200 OK) and the delay a probe tone
// takes from one participant through the room to the others.
//
//	mediagate-load [flags]        one run against a running gateway
//	mediagate-load suite [flags]  build and start the gateway (and Janus),
//	                              run the scenarios, print the table and
//	                              write bench/results/latest.json
//
// Participants join mediagate by dialling a fixed-room number over SIP
// (-target mediagate) or Janus AudioBridge rooms as plain RTP participants
// (-target janus, see janus.go).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "suite" && !inNetns():
		err = reexecInNetns(os.Args[1:])
	case len(os.Args) > 1 && os.Args[1] == "suite":
		err = suiteMain(ctx, os.Args[2:])
	default:
		err = runMain(ctx, os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mediagate-load:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mediagate-load: "+format+"\n", args...)
}

// runFlags declares the flags of one run on fs.
func runFlags(fs *flag.FlagSet) *options {
	o := &options{}
	fs.StringVar(&o.scenario, "scenario", "phone-only", "scenario name in the report")
	fs.StringVar(&o.target, "target", "mediagate", "mediagate (SIP dial-in) or janus (AudioBridge, plain RTP)")
	fs.IntVar(&o.gatewayPID, "gateway-pid", 0, "PID of the gateway process, for its CPU and RSS (required)")
	fs.StringVar(&o.sipAddr, "sip", "127.0.0.1:5060", "mediagate's SIP address (UDP)")
	fs.StringVar(&o.httpURL, "http", "http://127.0.0.1:8080", "mediagate's HTTP base URL (/metrics), or Janus's API URL")
	fs.StringVar(&o.host, "host", "127.0.0.1", "local address of the generator's SIP and RTP sockets")
	fs.IntVar(&o.calls, "calls", 20, "participants in all")
	fs.IntVar(&o.roomSize, "room-size", 10, "participants per room")
	fs.IntVar(&o.speakers, "speakers", 2, "speakers per room (the first one sends the probe bursts)")
	fs.IntVar(&o.numberBase, "number-base", 7000, "room k is dialled at number-base+k")
	fs.Float64Var(&o.rate, "rate", 50, "joins per second")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "time after the last join before measuring (prompts)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measurement window")
	fs.DurationVar(&o.probeEvery, "probe-every", time.Second, "time between probe bursts")
	fs.IntVar(&o.webrtcPerRoom, "webrtc-per-room", 0, "participants per room joining over WHIP (open rooms) instead of SIP")
	fs.BoolVar(&o.whepListeners, "whep", false, "WebRTC participants that do not speak join over WHEP (receive only)")
	fs.StringVar(&o.roomPrefix, "room-prefix", "bench", "WHIP joins room k as room-prefix + k in three digits (bench000)")
	return o
}

// check rejects options a run cannot use.
func (o *options) check() error {
	switch {
	case o.gatewayPID <= 0:
		return fmt.Errorf("-gateway-pid is required")
	case o.calls < 1 || o.roomSize < 1:
		return fmt.Errorf("-calls and -room-size must be at least 1")
	case o.speakers < 0 || o.speakers > min(o.roomSize, 6):
		return fmt.Errorf("-speakers must be 0..min(room size, 6)")
	case o.target != "mediagate" && o.target != "janus":
		return fmt.Errorf("-target %q: mediagate or janus", o.target)
	case o.duration < time.Second:
		return fmt.Errorf("-duration must be at least 1s")
	case o.webrtcPerRoom < 0 || o.webrtcPerRoom > o.roomSize:
		return fmt.Errorf("-webrtc-per-room must be 0..room size")
	case o.webrtcPerRoom > 0 && o.target == "janus":
		return fmt.Errorf("-webrtc-per-room with Janus: WebRTC participants reach Janus only in the suite's network namespace (mediagate-load suite)")
	}
	return nil
}

// runMain is one run against a running gateway.
func runMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mediagate-load", flag.ContinueOnError)
	o := runFlags(fs)
	out := fs.String("json", "", "write the report as JSON to this file")
	cpuProfile := fs.String("cpuprofile", "", "write the generator's own CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if err := o.check(); err != nil {
		return err
	}
	rep, err := runTarget(ctx, *o)
	if err != nil {
		return err
	}
	printTable(os.Stdout, []Report{rep})
	if *out != "" {
		return writeJSON(*out, []Report{rep})
	}
	return nil
}

// runTarget makes the target's signaller and runs o with it.
func runTarget(ctx context.Context, o options) (Report, error) {
	var sig signaller
	switch o.target {
	case "janus":
		j, err := newJanus(ctx, o.httpURL, o.host, (o.calls+o.roomSize-1)/o.roomSize)
		if err != nil {
			return Report{}, err
		}
		sig = j
	default:
		gw, err := netip.ParseAddrPort(o.sipAddr)
		if err != nil {
			return Report{}, fmt.Errorf("-sip: %w", err)
		}
		ua, err := newSIPUA(o.host)
		if err != nil {
			return Report{}, err
		}
		sig = &sipSignaller{ua: ua, gw: gw, base: o.numberBase}
	}
	defer sig.close()
	if o.webrtcPerRoom > 0 {
		clients, err := newWebRTCClients(o.host)
		if err != nil {
			return Report{}, fmt.Errorf("webrtc: %w", err)
		}
		defer clients.close()
		o.webrtc, o.opus = clients, &opusLoops{}
	}
	return run(ctx, o, sig)
}

// writeJSON writes reports to path, indented.
func writeJSON(path string, reps []Report) error {
	data, err := json.MarshalIndent(map[string]any{"generated": time.Now().UTC().Format(time.RFC3339),
		"results": reps}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
