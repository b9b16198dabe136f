package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the unit of /proc's CPU times (USER_HZ): 100 on every
// Linux this runs on (the kernel's ABI fixes it for /proc).
const clockTicks = 100

// machineCPU is the machine's CPU time at one moment: all of it and the
// idle part (/proc/stat), and each process's (/proc/<pid>/stat), in
// ticks. The bench runs every part of the test bed on this machine, so this
// says which of them the cores went to.
type machineCPU struct {
	at          time.Time
	total, idle float64
	procs       map[int]procCPU
}

type procCPU struct {
	name  string
	ticks float64
}

// readMachineCPU reads the machine's and every process's CPU time.
func readMachineCPU() (machineCPU, error) {
	m := machineCPU{at: time.Now(), procs: map[int]procCPU{}}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m, err
	}
	if m.total, m.idle, err = parseStatCPU(string(data)); err != nil {
		return m, err
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return m, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		name, ticks, ok := parseProcStat(string(stat))
		if !ok {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline")); err == nil {
			name = component(name, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
		m.procs[pid] = procCPU{name: name, ticks: ticks}
	}
	return m, nil
}

// parseStatCPU reads the first line of /proc/stat ("cpu  user nice system
// idle iowait irq softirq steal ..."): all the time and the idle time
// (idle and iowait). Guest time is part of user time already.
func parseStatCPU(stat string) (total, idle float64, err error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, s := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return total, idle, nil
}

// parseProcStat reads a /proc/<pid>/stat line: the command name (between
// the parentheses, which may hold spaces) and utime+stime of the process
// itself (fields 14 and 15).
func parseProcStat(stat string) (name string, ticks float64, ok bool) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	name = stat[open+1 : end]
	f := strings.Fields(stat[end+1:])
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return "", 0, false
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return name, u + s, true
}

// component names the part of the test bed a process is, from its command
// name (15 characters at most) and command line.
func component(comm, cmdline string) string {
	switch {
	case comm == "etcd", comm == "kube-apiserver", comm == "kube-scheduler", comm == "kwok":
		return comm
	case strings.HasPrefix(comm, "kube-controller"):
		return "kube-controller-manager"
	case comm == "manager":
		return "operator"
	case strings.Contains(cmdline, "mlflow"):
		return "MLflow"
	case strings.Contains(cmdline, "registry"):
		return "registry"
	case strings.HasPrefix(comm, "bench-scale"):
		return "the bench"
	default:
		return "other"
	}
}

// machineWindow is where the machine's CPU went between two readings, in
// cores (CPU seconds per second).
type machineWindow struct {
	elapsed  time.Duration
	cores    float64 // the machine's CPUs
	busy     float64
	byPart   map[string]float64
	readable bool
}

// cpuBetween is the CPU each part used between before and after. A process
// that started in between counts from zero; one that ended is not counted.
func cpuBetween(before, after machineCPU) machineWindow {
	el := after.at.Sub(before.at)
	w := machineWindow{elapsed: el, byPart: map[string]float64{}}
	if el <= 0 || after.total <= before.total {
		return w
	}
	w.readable = true
	secs := el.Seconds()
	all := after.total - before.total
	// /proc/stat adds up every CPU's time: all of it over the elapsed
	// time is the number of CPUs.
	w.cores = math.Round(all / clockTicks / secs)
	w.busy = (all - (after.idle - before.idle)) / clockTicks / secs
	for pid, p := range after.procs {
		d := p.ticks
		if b, ok := before.procs[pid]; ok && b.name == p.name {
			d -= b.ticks
		}
		if d > 0 {
			w.byPart[p.name] += d / clockTicks / secs
		}
	}
	return w
}

// String is "1.9 of 2 cores busy: kube-apiserver 0.71, etcd 0.32, ...",
// the parts by decreasing use.
func (w machineWindow) String() string {
	if !w.readable {
		return "not readable"
	}
	parts := make([]string, 0, len(w.byPart))
	for k := range w.byPart {
		parts = append(parts, k)
	}
	slices.SortFunc(parts, func(a, b string) int {
		if w.byPart[a] != w.byPart[b] {
			if w.byPart[a] > w.byPart[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	out := make([]string, 0, len(parts))
	for _, k := range parts {
		out = append(out, fmt.Sprintf("%s %.2f", k, w.byPart[k]))
	}
	return fmt.Sprintf("%.2f of %.0f cores busy (%.0f%%); by part, in cores: %s",
		w.busy, w.cores, 100*w.busy/w.cores, strings.Join(out, ", "))
}
