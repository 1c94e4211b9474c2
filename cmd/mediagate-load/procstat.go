package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// procCPU is a process's CPU time so far, user plus system (proc(5),
// fields 14 and 15 of /proc/PID/stat); pid "self" is this process.
func procCPU(pid string) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 > len(data) {
		return 0, fmt.Errorf("/proc/%s/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%s/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%s/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// procRSS is a process's resident set in bytes (VmRSS of /proc/PID/status).
func procRSS(pid string) (int64, error) {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("/proc/%s/status: no VmRSS", pid)
}

// mixerCounters are the gateway's mixer counters at one moment.
type mixerCounters struct {
	ticks, late           float64
	sharedEnc, individual float64
	// recordings running, and live-stream destinations in state live.
	recordings, egressesLive float64
}

// scrapeMixer reads the mixer counters from the gateway's /metrics.
func scrapeMixer(client *http.Client, url string) (mixerCounters, error) {
	res, err := client.Get(url)
	if err != nil {
		return mixerCounters{}, err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return mixerCounters{}, fmt.Errorf("%s: %s", url, res.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		return mixerCounters{}, fmt.Errorf("%s: %w", url, err)
	}
	sum := func(name, label, value string) float64 {
		var v float64
		for _, m := range fams[name].GetMetric() {
			ok := label == ""
			for _, lp := range m.GetLabel() {
				ok = ok || (lp.GetName() == label && lp.GetValue() == value)
			}
			if ok {
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return v
	}
	return mixerCounters{
		ticks:        sum("mediagate_mixer_ticks_total", "", ""),
		late:         sum("mediagate_mixer_late_ticks_total", "", ""),
		sharedEnc:    sum("mediagate_mixer_encodes_total", "mode", "shared"),
		individual:   sum("mediagate_mixer_encodes_total", "mode", "individual"),
		recordings:   sum("mediagate_recordings_active", "", ""),
		egressesLive: sum("mediagate_egress_state", "state", "live"),
	}, nil
}
