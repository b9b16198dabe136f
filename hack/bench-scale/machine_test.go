package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	total, idle, err := parseStatCPU("cpu  100 5 50 800 45 0 0 0 7 0\ncpu0 50 2 25 400 20 0 0 0 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	// user nice system idle iowait irq softirq steal; guest is in user.
	if total != 1000 || idle != 845 {
		t.Fatalf("total %v idle %v, want 1000 and 845", total, idle)
	}
	if _, _, err := parseStatCPU("intr 1 2 3\n"); err == nil {
		t.Fatal("a /proc/stat without a cpu line was read")
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis, as the kernel allows.
	line := "4242 (kube (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 12 0 500 0 0"
	name, ticks, ok := parseProcStat(line)
	if !ok || name != "kube (x) y" || ticks != 168 {
		t.Fatalf("got %q %v %v, want \"kube (x) y\" 168 true", name, ticks, ok)
	}
	if _, _, ok := parseProcStat("1 (short) S 1"); ok {
		t.Fatal("a truncated stat line was read")
	}
}

func TestCPUBetween(t *testing.T) {
	t0 := time.Unix(1000, 0)
	before := machineCPU{at: t0, total: 0, idle: 0, procs: map[int]procCPU{
		1: {"kube-apiserver", 1000}, 2: {"operator", 50}, 3: {"etcd", 10},
	}}
	after := machineCPU{at: t0.Add(10 * time.Second), total: 2000, idle: 500, procs: map[int]procCPU{
		1: {"kube-apiserver", 1800}, // 800 ticks in 10 s: 0.8 cores
		2: {"operator", 250},        // 0.2
		4: {"kwok", 100},            // started in between: 0.1
		// pid 3 ended: not counted
	}}
	w := cpuBetween(before, after)
	if w.busy != 1.5 || w.cores != 2 {
		t.Fatalf("busy %v of %v cores, want 1.5 of 2 (2,000 ticks in 10 s)", w.busy, w.cores)
	}
	want := map[string]float64{"kube-apiserver": 0.8, "operator": 0.2, "kwok": 0.1}
	for k, v := range want {
		if w.byPart[k] != v {
			t.Fatalf("%s: %v cores, want %v (all: %v)", k, w.byPart[k], v, w.byPart)
		}
	}
	if _, ok := w.byPart["etcd"]; ok {
		t.Fatal("a process that ended was counted")
	}
	s := w.String()
	if !strings.HasPrefix(s, "1.50 of 2 cores busy (75%); by part, in cores: kube-apiserver 0.80, operator 0.20, kwok 0.10") {
		t.Fatalf("String: %q", s)
	}
}

func TestComponent(t *testing.T) {
	for _, c := range []struct{ comm, cmdline, want string }{
		{"kube-controller", "/x/kube-controller-manager --kubeconfig=k", "kube-controller-manager"},
		{"manager", "/tmp/x/manager --leader-elect=false", "operator"},
		{"python3", "/venv/bin/python3 /venv/bin/mlflow server --port 1", "MLflow"},
		{"gunicorn", "gunicorn mlflow.server:app", "MLflow"},
		{"bash", "bash -c x", "other"},
	} {
		if got := component(c.comm, c.cmdline); got != c.want {
			t.Errorf("component(%q, %q) = %q, want %q", c.comm, c.cmdline, got, c.want)
		}
	}
}

func TestReadMachineCPU(t *testing.T) {
	m, err := readMachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if m.total <= 0 || len(m.procs) == 0 {
		t.Fatalf("nothing read: total %v, %d processes", m.total, len(m.procs))
	}
}
