package main

import (
	"fmt"
	"sync"
	"time"
)

// goMemory is the operator's Go runtime memory at one time, from the Go
// collector's series on its metrics endpoint (controller-runtime registers
// it with every runtime/metrics series), with the VmRSS read just before.
// It says what the resident set is made of: the heap the objects occupy,
// the heap the runtime keeps free without returning it to the OS, stacks.
type goMemory struct {
	rss          int64
	heapInuse    int64 // spans holding objects
	heapFree     int64 // free, still resident (not yet returned to the OS)
	heapReleased int64 // returned to the OS
	stacks       int64
	// mapped is everything the runtime has mapped less what it returned to
	// the OS: what a soft memory limit is compared with.
	mapped     int64
	live, goal int64 // heap live after the last GC; heap size of the next GC
	gogc       float64
	limit      int64 // soft memory limit; 0: none
}

func goMemoryOf(sc scrape, rss int64) goMemory {
	v := func(name string) int64 {
		f := sc.sum(name, nil)
		// No limit is math.MaxInt64, which a float64 rounds past int64's
		// range.
		if f >= 1<<62 {
			return 0
		}
		return int64(f)
	}
	released := v("go_memory_classes_heap_released_bytes")
	return goMemory{rss: rss,
		heapInuse:    v("go_memstats_heap_inuse_bytes"),
		heapFree:     v("go_memory_classes_heap_free_bytes"),
		heapReleased: released,
		stacks:       v("go_memstats_stack_sys_bytes"),
		mapped:       v("go_memory_classes_total_bytes") - released,
		live:         v("go_gc_heap_live_bytes"),
		goal:         v("go_gc_heap_goal_bytes"),
		gogc:         sc.sum("go_gc_gogc_percent", nil),
		limit:        v("go_gc_gomemlimit_bytes"),
	}
}

// settings is the GOGC and soft memory limit the operator runs with.
func (g goMemory) settings() string {
	limit := "none"
	if g.limit > 0 {
		limit = mib(g.limit)
	}
	gogc := num(g.gogc)
	if g.gogc < 0 {
		gogc = "off"
	}
	return gogc + " / " + limit
}

// gcWork is what the garbage collector did between two scrapes.
type gcWork struct {
	cycles float64
	// gc and busy are the runtime's own CPU estimates (as of the last GC
	// cycle): GC work, and all but the idle time of its Ps.
	gc, busy float64
	// cpu is the process's CPU time (process_cpu_seconds_total).
	cpu float64
}

func gcBetween(before, after scrape) gcWork {
	d := func(name string) float64 { return after.sum(name, nil) - before.sum(name, nil) }
	return gcWork{cycles: d("go_gc_cycles_total_gc_cycles_total"), gc: d("go_cpu_classes_gc_total_cpu_seconds_total"),
		busy: d("go_cpu_classes_total_cpu_seconds_total") - d("go_cpu_classes_idle_cpu_seconds_total"),
		cpu:  d("process_cpu_seconds_total")}
}

// String is "cycles / GC share of the busy CPU / process CPU".
func (w gcWork) String() string {
	share := "-"
	if w.busy > 0 {
		share = fmt.Sprintf("%.0f%%", 100*w.gc/w.busy)
	}
	return fmt.Sprintf("%s / %s / %.1f s", num(w.cycles), share, w.cpu)
}

// peakSampler reads the operator's VmRSS every couple of seconds and, each
// time it is the highest yet, scrapes the Go runtime figures: what the
// memory was made of near the peak, which VmHWM alone does not tell. It
// scrapes only on a new high, so it adds almost no work to the operator.
type peakSampler struct {
	pid  int
	url  string
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	phase      string
	best       goMemory
	bestPhase  string
	bestScrape bool
}

func startPeakSampler(pid int, url, phase string) *peakSampler {
	p := &peakSampler{pid: pid, url: url, phase: phase, stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop(2 * time.Second)
	return p
}

func (p *peakSampler) loop(every time.Duration) {
	defer close(p.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		m, err := readMemory(p.pid)
		p.mu.Lock()
		higher := err == nil && m.rss > p.best.rss
		phase := p.phase
		p.mu.Unlock()
		if higher {
			// A failed scrape keeps the RSS, so the next sample must beat
			// it; the figures are best effort.
			sc, err := scrapeMetrics(p.url)
			g := goMemory{rss: m.rss}
			if err == nil {
				g = goMemoryOf(sc, m.rss)
			}
			p.mu.Lock()
			p.best, p.bestPhase, p.bestScrape = g, phase, err == nil
			p.mu.Unlock()
		}
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

// setPhase names what the run does from now on, for the peak's report.
func (p *peakSampler) setPhase(phase string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = phase
}

// finish stops sampling and returns the highest sample, the phase it fell
// in, and whether its Go figures were read.
func (p *peakSampler) finish() (goMemory, string, bool) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.best, p.bestPhase, p.bestScrape
}
