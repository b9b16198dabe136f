package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// request is one request of the operator's user as kube-apiserver's audit
// log records it.
type request struct {
	at       time.Time // when the API server received it
	verb     string    // get, list, watch, create, update, patch, delete...
	resource string    // resource[/subresource]
	code     int
	// server is the time from receiving it to its answer's end (stage
	// ResponseComplete); timed false for a watch (logged when it started).
	server time.Duration
	timed  bool
}

// write tells whether verb changes something (POST, PUT, PATCH, DELETE).
func (r request) write() bool {
	switch r.verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// key is "VERB resource[/subresource]" with the HTTP-like verb names
// people read: POST for create, PUT for update.
func (r request) key() string {
	v := map[string]string{"create": "POST", "update": "PUT"}[r.verb]
	if v == "" {
		v = strings.ToUpper(r.verb)
	}
	return v + " " + r.resource
}

// auditLog follows the API server's audit log as it grows and keeps every
// request it holds.
type auditLog struct {
	path string
	rmu  sync.Mutex // one read at a time: off and part
	mu   sync.Mutex // reqs and err
	reqs []request
	off  int64
	part []byte
	err  error
}

type auditEvent struct {
	Verb      string `json:"verb"`
	Received  string `json:"requestReceivedTimestamp"`
	Stage     string `json:"stage"`
	StageAt   string `json:"stageTimestamp"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestURI string `json:"requestURI"`
}

// follow reads the log every second until stop is closed.
func (a *auditLog) follow(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		a.read()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// read takes in what was appended since the last read.
func (a *auditLog) read() {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	f, err := os.Open(a.path)
	if err != nil {
		return // not written yet
	}
	defer f.Close()
	if _, err := f.Seek(a.off, io.SeekStart); err != nil {
		a.setErr(err)
		return
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		a.off += int64(len(line))
		if err != nil {
			a.part = append(a.part, line...)
			return
		}
		if len(a.part) > 0 {
			line = append(a.part, line...)
			a.part = nil
		}
		var e auditEvent
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		at, _ := time.Parse(time.RFC3339Nano, e.Received)
		req := request{at: at, verb: e.Verb}
		if e.Stage == "ResponseComplete" && e.Verb != "watch" {
			if end, err := time.Parse(time.RFC3339Nano, e.StageAt); err == nil && !at.IsZero() && !end.Before(at) {
				req.server, req.timed = end.Sub(at), true
			}
		}
		switch {
		case e.ObjectRef != nil && e.ObjectRef.Resource != "":
			req.resource = e.ObjectRef.Resource
			if e.ObjectRef.Subresource != "" {
				req.resource += "/" + e.ObjectRef.Subresource
			}
		default:
			req.resource = e.RequestURI // /api, /apis, /version...
			if i := strings.IndexByte(req.resource, '?'); i >= 0 {
				req.resource = req.resource[:i]
			}
		}
		if e.ResponseStatus != nil {
			req.code = e.ResponseStatus.Code
		}
		a.mu.Lock()
		a.reqs = append(a.reqs, req)
		a.mu.Unlock()
	}
}

func (a *auditLog) setErr(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.err = err
}

// counts is the requests received in [from, to): all of them, the
// writes, and each "VERB resource" (writes and reads).
type counts struct {
	all, writes float64
	byKey       map[string]float64
	codes       map[string]float64 // answers other than 2xx, by code
	// server is the API server's time of each request completed (watches
	// excluded), serverSeconds their sum.
	server        []time.Duration
	serverSeconds float64
}

// latency is the spread of the API server's time per completed request.
func (c counts) latency() spread { return spreadOf("API server time", c.server) }

func (a *auditLog) between(from, to time.Time) counts {
	a.read()
	a.mu.Lock()
	defer a.mu.Unlock()
	c := counts{byKey: map[string]float64{}, codes: map[string]float64{}}
	for _, r := range a.reqs {
		if r.at.Before(from) || !r.at.Before(to) {
			continue
		}
		c.all++
		if r.write() {
			c.writes++
		}
		c.byKey[r.key()]++
		if r.timed {
			c.server = append(c.server, r.server)
			c.serverSeconds += r.server.Seconds()
		}
		if r.code != 0 && (r.code < 200 || r.code > 299) {
			c.codes[r.key()+" -> "+itoa(r.code)]++
		}
	}
	return c
}

func itoa(i int) string { return num(float64(i)) }
