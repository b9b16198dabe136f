package mlflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
)

// File is one downloaded artifact file.
type File struct {
	// Path is relative to the model directory, with forward slashes.
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest lists what DownloadVersion wrote, sorted by path.
type Manifest struct {
	// ArtifactURI is where MLflow says the version's files are (its download
	// URI: mlflow-artifacts:/..., runs:/..., models:/...).
	ArtifactURI string `json:"artifactURI"`
	// ResolvedURI is the mlflow-artifacts folder the files came from, after
	// following runs:/ and models:/ indirections; empty when they came
	// through model-versions/get-artifact.
	ResolvedURI string `json:"resolvedURI,omitempty"`
	Files       []File `json:"files"`
}

// Digest is a digest of the whole model: of every file's path, size and
// SHA-256, in path order. Two downloads of the same files have the same
// digest.
func (m *Manifest) Digest() string {
	h := sha256.New()
	for _, f := range m.Files {
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", f.Path, f.Size, f.SHA256)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// ErrUnsafePath is returned for an artifact path that would leave the model
// directory.
var ErrUnsafePath = errors.New("artifact path escapes the model directory")

// GetDownloadURI answers where a version's files are, e.g.
// mlflow-artifacts:/1/models/m-abc/artifacts.
func (c *Client) GetDownloadURI(ctx context.Context, name, version string) (string, error) {
	var out struct {
		ArtifactURI string `json:"artifact_uri"`
	}
	if err := c.getJSON(ctx, "GET model-versions/get-download-uri", "model-versions/get-download-uri",
		url.Values{"name": {name}, "version": {version}}, &out); err != nil {
		return "", err
	}
	if out.ArtifactURI == "" {
		return "", failure.New(failure.Other, failure.MLflow, "GET model-versions/get-download-uri", errors.New("the answer holds no artifact_uri"))
	}
	return out.ArtifactURI, nil
}

// DownloadVersion downloads every file of a model version into dir (which
// must exist and be empty), streaming each file to disk. Files are fetched
// through the tracking server's artifact proxy (mlflow-artifacts URIs, also
// behind runs:/ and models:/ sources), walking the directory tree. When the
// server does not proxy the version's storage (s3://, gs://, ...), the files
// named by the MLmodel file are fetched through model-versions/get-artifact,
// which cannot list directories.
func (c *Client) DownloadVersion(ctx context.Context, name, version, dir string) (*Manifest, error) {
	uri, err := c.GetDownloadURI(ctx, name, version)
	if err != nil {
		return nil, err
	}
	m := &Manifest{ArtifactURI: uri}
	loc, err := c.artifactLocation(ctx, uri, 0)
	switch {
	case err == nil:
		m.ResolvedURI = "mlflow-artifacts:/" + loc.path
		err = c.walk(ctx, loc, "", dir, m)
	case errors.Is(err, errNotProxied):
		err = c.downloadByMLmodel(ctx, name, version, dir, m)
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	return m, nil
}

// proxied is a folder behind a tracking server's artifact proxy.
type proxied struct {
	client *Client
	path   string
}

var errNotProxied = errors.New("artifact storage is not proxied by the tracking server")

// artifactLocation resolves an artifact URI to a folder behind an artifact
// proxy, following runs:/ and models:/ indirections.
func (c *Client) artifactLocation(ctx context.Context, uri string, depth int) (proxied, error) {
	if depth > 4 {
		return proxied{}, failure.Errorf(failure.Other, failure.MLflow, "artifact URI %q: too many indirections", uri)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return proxied{}, failure.New(failure.Other, failure.MLflow, fmt.Sprintf("invalid artifact URI %q", uri), err)
	}
	switch u.Scheme {
	case "mlflow-artifacts":
		p := strings.Trim(u.Path, "/")
		if u.Host == "" || u.Host == c.base.Host {
			return proxied{client: c, path: p}, nil
		}
		// Another host serves the artifacts: same scheme and credentials.
		other := *c
		base := *c.base
		base.Host, base.Path = u.Host, ""
		other.base = &base
		return proxied{client: &other, path: p}, nil
	case "runs":
		// runs:/<run id>/<path>
		parts := strings.SplitN(strings.Trim(u.Path, "/"), "/", 2)
		var out struct {
			Run struct {
				Info struct {
					ArtifactURI string `json:"artifact_uri"`
				} `json:"info"`
			} `json:"run"`
		}
		if err := c.getJSON(ctx, "GET runs/get", "runs/get", url.Values{"run_id": {parts[0]}}, &out); err != nil {
			return proxied{}, err
		}
		root := strings.TrimRight(out.Run.Info.ArtifactURI, "/")
		if len(parts) == 2 && parts[1] != "" {
			root += "/" + parts[1]
		}
		return c.artifactLocation(ctx, root, depth+1)
	case "models":
		// models:/m-<id> (a logged model) or models:/<name>/<version>.
		p := strings.Trim(u.Path, "/")
		if u.Host != "" {
			p = strings.Trim(u.Host+"/"+p, "/")
		}
		if strings.HasPrefix(p, "m-") && !strings.Contains(p, "/") {
			var out struct {
				Model struct {
					Info struct {
						ArtifactURI string `json:"artifact_uri"`
					} `json:"info"`
				} `json:"model"`
			}
			if err := c.getJSON(ctx, "GET logged-models", "logged-models/"+url.PathEscape(p), nil, &out); err != nil {
				return proxied{}, err
			}
			return c.artifactLocation(ctx, out.Model.Info.ArtifactURI, depth+1)
		}
		name, version, ok := strings.Cut(p, "/")
		if !ok {
			return proxied{}, failure.Errorf(failure.Other, failure.MLflow, "unsupported model URI %q", uri)
		}
		next, err := c.GetDownloadURI(ctx, name, version)
		if err != nil {
			return proxied{}, err
		}
		return c.artifactLocation(ctx, next, depth+1)
	default:
		return proxied{}, fmt.Errorf("%w: %s", errNotProxied, u.Scheme)
	}
}

// listEntry is one entry of an artifact listing.
type listEntry struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize int64  `json:"file_size,omitempty"`
}

// list lists one level of a proxied folder.
func (p proxied) list(ctx context.Context, rel string) ([]listEntry, error) {
	var out struct {
		Files []listEntry `json:"files"`
	}
	full := strings.Trim(path.Join(p.path, rel), "/")
	body, err := p.client.request(ctx, "GET mlflow-artifacts list", http.MethodGet,
		p.client.endpoint(artifactsPrefix, url.Values{"path": {full}}), nil, p.client.maxBody)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, failure.New(failure.Other, failure.MLflow, "GET mlflow-artifacts list", fmt.Errorf("cannot decode the listing: %w", err))
	}
	return out.Files, nil
}

// walk downloads the folder rel of p into dir/rel, recursively.
func (c *Client) walk(ctx context.Context, p proxied, rel, dir string, m *Manifest) error {
	entries, err := p.list(ctx, rel)
	if err != nil {
		return err
	}
	for _, e := range entries {
		// The listing names entries by their path relative to the listed
		// root; older servers give the base name only.
		name := path.Base(e.Path)
		if e.Path == "" || name == "." || name == ".." || name == "/" {
			return fmt.Errorf("%w: listing entry %q", ErrUnsafePath, e.Path)
		}
		child, err := SafeJoin(rel, name)
		if err != nil {
			return err
		}
		if e.IsDir {
			if err := c.walk(ctx, p, child, dir, m); err != nil {
				return err
			}
			continue
		}
		full := strings.Trim(path.Join(p.path, child), "/")
		u := p.client.endpoint(artifactsPrefix+"/"+full, nil)
		f, err := p.client.downloadFile(ctx, u, dir, child)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, f)
	}
	return nil
}

// DownloadNamedFiles fetches, through model-versions/get-artifact, the MLmodel
// file and the files it names (environment files, input examples, the
// flavors' model files). DownloadVersion uses it for storage the tracking
// server does not proxy and so cannot list; directories a flavor names are
// not walked.
func (c *Client) DownloadNamedFiles(ctx context.Context, name, version, dir string) ([]File, error) {
	m := &Manifest{}
	if err := c.downloadByMLmodel(ctx, name, version, dir, m); err != nil {
		return nil, err
	}
	return m.Files, nil
}

// downloadByMLmodel fetches the files the MLmodel file names, for storage
// the server cannot list.
func (c *Client) downloadByMLmodel(ctx context.Context, name, version, dir string, m *Manifest) error {
	get := func(rel string) (File, error) {
		u := c.endpoint("/model-versions/get-artifact", url.Values{"name": {name}, "version": {version}, "path": {rel}})
		return c.downloadFile(ctx, u, dir, rel)
	}
	mlmodel, err := get("MLmodel")
	if err != nil {
		return fmt.Errorf("the version's storage cannot be listed and its MLmodel file cannot be read: %w", err)
	}
	m.Files = append(m.Files, mlmodel)
	data, err := os.ReadFile(filepath.Join(dir, "MLmodel"))
	if err != nil {
		return err
	}
	for _, rel := range filesNamedBy(data) {
		f, err := get(rel)
		if failure.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		m.Files = append(m.Files, f)
	}
	return nil
}

// filesNamedBy lists the files an MLmodel file names: the environment files
// MLflow writes next to it, the input examples, and the flavors' file keys.
func filesNamedBy(mlmodel []byte) []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p == "" || seen[p] {
			return
		}
		if _, err := SafeJoin("", p); err != nil {
			return
		}
		seen[p] = true
		out = append(out, p)
	}
	for _, f := range []string{"conda.yaml", "python_env.yaml", "requirements.txt", "input_example.json",
		"serving_input_example.json", "registered_model_meta"} {
		add(f)
	}
	var doc struct {
		Flavors           map[string]map[string]any `json:"flavors"`
		SavedInputExample map[string]any            `json:"saved_input_example_info"`
	}
	if yaml.Unmarshal(mlmodel, &doc) != nil {
		return out
	}
	for _, fl := range doc.Flavors {
		for _, key := range []string{"pickled_model", "model_path", "data", "model_data"} {
			if s, ok := fl[key].(string); ok {
				add(s)
			}
		}
	}
	for _, key := range []string{"artifact_path", "serving_input_path"} {
		if s, ok := doc.SavedInputExample[key].(string); ok {
			add(s)
		}
	}
	sort.Strings(out)
	return out
}

// downloadFile streams one file to dir/rel, hashing it on the way, and
// refuses more than the per-file limit.
func (c *Client) downloadFile(ctx context.Context, u *url.URL, dir, rel string) (File, error) {
	target, err := SafeJoin(dir, rel)
	if err != nil {
		return File{}, err
	}
	op := "GET artifact " + rel
	var f File
	err = c.retry(ctx, op, func() (bool, time.Duration, error) {
		got, err := c.downloadOnce(ctx, op, u, target, rel)
		f = got
		// Only what may pass is tried again: a refused or missing file
		// stays so, and a cancelled download was meant to stop.
		return failure.KindOf(err) == failure.Unreachable && ctx.Err() == nil, 0, err
	})
	if err != nil {
		return File{}, err
	}
	return f, nil
}

func (c *Client) downloadOnce(ctx context.Context, op string, u *url.URL, target, rel string) (File, error) {
	// No per-request timeout for the body: a large file takes as long as it
	// takes; ctx bounds the whole download.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return File{}, err
	}
	req.Header.Set("User-Agent", c.userAgent)
	c.auth.apply(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return File{}, failure.New(failure.Unreachable, failure.MLflow, op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := readLimited(resp.Body, 64<<10)
		return File{}, errorFromResponse(op, resp, body)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return File{}, err
	}
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(resp.Body, c.maxFile+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		kind := failure.Other
		if isNetError(err) || errors.Is(err, io.ErrUnexpectedEOF) {
			kind = failure.Unreachable
		}
		return File{}, failure.New(kind, failure.MLflow, op, fmt.Errorf("download interrupted: %w", err))
	}
	if n > c.maxFile {
		_ = os.Remove(target)
		return File{}, failure.New(failure.Other, failure.MLflow, op, fmt.Errorf("file is larger than the limit of %d bytes", c.maxFile))
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return File{}, failure.New(failure.Unreachable, failure.MLflow, op, fmt.Errorf("got %d of %d bytes", n, resp.ContentLength))
	}
	return File{Path: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// SafeJoin joins rel (forward slashes) below dir, refusing absolute paths and
// any path that would leave dir.
func SafeJoin(dir, rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.Contains(rel, "\\") || strings.ContainsRune(rel, 0) {
		return "", fmt.Errorf("%w: %q", ErrUnsafePath, rel)
	}
	local := filepath.FromSlash(rel)
	if !filepath.IsLocal(local) {
		return "", fmt.Errorf("%w: %q", ErrUnsafePath, rel)
	}
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q", ErrUnsafePath, rel)
		}
	}
	if dir == "" {
		return path.Clean(rel), nil
	}
	return filepath.Join(dir, local), nil
}

// ReadArtifact reads one file of a model version (at most limit bytes), e.g.
// serving_input_example.json: through the artifact proxy, or through
// model-versions/get-artifact for storage the server does not proxy.
func (c *Client) ReadArtifact(ctx context.Context, name, version, rel string, limit int64) ([]byte, error) {
	if _, err := SafeJoin("", rel); err != nil {
		return nil, err
	}
	uri, err := c.GetDownloadURI(ctx, name, version)
	if err != nil {
		return nil, err
	}
	op := "GET artifact " + rel
	loc, err := c.artifactLocation(ctx, uri, 0)
	switch {
	case err == nil:
		full := strings.Trim(path.Join(loc.path, rel), "/")
		return loc.client.request(ctx, op, http.MethodGet, loc.client.endpoint(artifactsPrefix+"/"+full, nil), nil, limit)
	case errors.Is(err, errNotProxied):
		u := c.endpoint("/model-versions/get-artifact", url.Values{"name": {name}, "version": {version}, "path": {rel}})
		return c.request(ctx, op, http.MethodGet, u, nil, limit)
	default:
		return nil, err
	}
}
