package mlflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// budget is what one model version's download may still take: the limits
// of WithDownloadLimits and WithMaxArtifactBytes, and what was counted so
// far. The operator's temp dir is a volume of fixed size and a build worker
// is shared: a server must not fill the one or hold the other.
type budget struct {
	// what names the version in messages: `version 3 of model "iris"`.
	what     string
	maxTotal int64
	maxFile  int64
	maxFiles int
	maxDepth int
	entries  int
	// declared is the sum of the sizes the listing gave, got the bytes of
	// the files downloaded.
	declared, got int64
}

func (c *Client) newBudget(name, version string) *budget {
	return &budget{
		what:     fmt.Sprintf("version %s of model %s", text.Shorten(version, maxMessage), quote(name)),
		maxTotal: c.maxTotal, maxFile: c.maxFile, maxFiles: c.maxFiles, maxDepth: c.maxDepth,
	}
}

// entry counts one file or folder.
func (b *budget) entry() error {
	if b.entries++; b.entries > b.maxFiles {
		return failure.Errorf(failure.Invalid, failure.MLflow,
			"%s has more than %d files and folders; the limit is %d (operator flag --max-model-files)", b.what, b.maxFiles, b.maxFiles)
	}
	return nil
}

// folder checks the depth of the folder rel ("" or "." for the top).
func (b *budget) folder(rel string) error {
	if rel == "" || rel == "." {
		return nil
	}
	if depth := strings.Count(rel, "/") + 1; depth > b.maxDepth {
		return failure.Errorf(failure.Invalid, failure.MLflow,
			"%s has artifacts in folders nested %d deep; the limit is %d (operator flag --max-model-depth)", b.what, depth, b.maxDepth)
	}
	return nil
}

// declare adds a file of the listing with its size.
func (b *budget) declare(rel string, size int64) error {
	if size > b.maxFile {
		return b.fileTooLarge(rel, b.maxFile)
	}
	// A negative size is the server's nonsense; the bytes are counted
	// again as they come.
	b.declared += max(size, 0)
	return nil
}

// checkDeclared checks the listing's total. The sum cannot overflow: each
// size is at most maxFile, and there are at most maxFiles of them.
func (b *budget) checkDeclared() error {
	if b.declared > b.maxTotal {
		return failure.Errorf(failure.Invalid, failure.MLflow, "%s has %s of artifacts; the limit is %s (operator flag --max-model-bytes)",
			b.what, humanBytes(b.declared), humanBytes(b.maxTotal))
	}
	return nil
}

// fileLimit is how many bytes the next file may have: the per-file limit,
// what is left of the total, and limit when it is positive.
func (b *budget) fileLimit(limit int64) int64 {
	n := min(b.maxFile, b.maxTotal-b.got)
	if limit > 0 {
		n = min(n, limit)
	}
	return max(n, 0)
}

// tooLarge is the failure for the file rel, which had more than
// fileLimit(limit) bytes: whichever limit that was.
func (b *budget) tooLarge(rel string, limit int64) error {
	left := b.maxTotal - b.got
	switch {
	case limit > 0 && limit <= min(b.maxFile, left):
		return b.fileTooLarge(rel, limit)
	case left < b.maxFile:
		return failure.Errorf(failure.Invalid, failure.MLflow, "%s has more than %s of artifacts; the limit is %s (operator flag --max-model-bytes)",
			b.what, humanBytes(b.maxTotal), humanBytes(b.maxTotal))
	default:
		return b.fileTooLarge(rel, b.maxFile)
	}
}

func (b *budget) fileTooLarge(rel string, limit int64) error {
	return failure.Errorf(failure.Invalid, failure.MLflow, "artifact %s of %s is larger than %s, the limit for this file",
		quote(rel), b.what, humanBytes(limit))
}

// humanBytes says n in the largest binary unit it reaches, with one decimal
// unless that is zero: "800 B", "10 GiB", "12.5 GiB".
func humanBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for ; v >= 1024 && i < len(units)-1; i++ {
		v /= 1024
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + " " + units[i:i+1] + "iB"
}

// downloadFile streams one file to dir/rel, hashing it on the way, within
// the budget's fileLimit(limit), and counts it in the budget.
func (c *Client) downloadFile(ctx context.Context, u *url.URL, dir, rel string, b *budget, limit int64) (File, error) {
	target, err := SafeJoin(dir, rel)
	if err != nil {
		return File{}, err
	}
	op := "GET artifact " + text.Shorten(rel, maxMessage)
	fileMax := b.fileLimit(limit)
	var f File
	err = c.retry(ctx, op, func() (bool, time.Duration, error) {
		got, err := c.downloadOnce(ctx, op, u, target, rel, fileMax)
		f = got
		// Only what may pass is tried again: a refused or missing file
		// stays so, and a cancelled download was meant to stop.
		return failure.KindOf(err) == failure.Unreachable && ctx.Err() == nil, 0, err
	})
	if errors.Is(err, errTooLarge) {
		return File{}, b.tooLarge(rel, limit)
	}
	if err != nil {
		return File{}, err
	}
	b.got += f.Size
	return f, nil
}

// errTooLarge is the cause of a file over its limit; downloadFile says which
// limit.
var errTooLarge = errors.New("file over the size limit")

// errIdle is the cause of a download cancelled for receiving nothing.
var errIdle = errors.New("no data received")

func (c *Client) downloadOnce(ctx context.Context, op string, u *url.URL, target, rel string, limit int64) (File, error) {
	// No per-request timeout for the body: a large file takes as long as it
	// takes; ctx bounds the whole download, and the idle timer a server
	// that stops sending, whether before the answer or within the body.
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := startIdleTimer(c.idle, func() { cancel(errIdle) })
	defer idle.stop()
	idleFailure := func() (File, error) {
		return File{}, failure.New(failure.Unreachable, failure.MLflow, op,
			fmt.Errorf("no data from the server for %s: %w", c.idle, errIdle))
	}
	req, err := http.NewRequestWithContext(dctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return File{}, failure.New(failure.Other, failure.MLflow, op, shortErr(err))
	}
	req.Header.Set("User-Agent", c.userAgent)
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		if context.Cause(dctx) == errIdle {
			return idleFailure()
		}
		return File{}, transportFailure(op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := readLimited(resp.Body, 64<<10)
		return File{}, errorFromResponse(op, resp, body)
	}
	if resp.ContentLength > limit {
		// Refused before a byte is written: the server said how much.
		return File{}, failure.New(failure.Invalid, failure.MLflow, op, errTooLarge)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return File{}, err
	}
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(idle.reader(resp.Body), limit+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if context.Cause(dctx) == errIdle {
			return idleFailure()
		}
		kind := failure.Other
		if isNetError(err) || errors.Is(err, io.ErrUnexpectedEOF) {
			kind = failure.Unreachable
		}
		return File{}, failure.New(kind, failure.MLflow, op, fmt.Errorf("download interrupted: %w", shortErr(err)))
	}
	if n > limit {
		_ = os.Remove(target)
		return File{}, failure.New(failure.Invalid, failure.MLflow, op, errTooLarge)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return File{}, failure.New(failure.Unreachable, failure.MLflow, op, fmt.Errorf("got %d of %d bytes", n, resp.ContentLength))
	}
	return File{Path: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// idleTimer calls fire when d passes without a byte read through reader.
type idleTimer struct {
	d time.Duration
	t *time.Timer
}

// startIdleTimer starts the timer; d <= 0 never fires.
func startIdleTimer(d time.Duration, fire func()) *idleTimer {
	it := &idleTimer{d: d}
	if d > 0 {
		it.t = time.AfterFunc(d, fire)
	}
	return it
}

func (it *idleTimer) stop() {
	if it.t != nil {
		it.t.Stop()
	}
}

// reader is r, each byte read putting the timer back to d.
func (it *idleTimer) reader(r io.Reader) io.Reader {
	if it.t == nil {
		return r
	}
	return &idleReader{r: r, it: it}
}

type idleReader struct {
	r  io.Reader
	it *idleTimer
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.it.t.Reset(ir.it.d)
	}
	return n, err
}
