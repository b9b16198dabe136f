package mlflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

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

// ErrUnsafePath is the cause of an artifact path that would leave the model
// directory. The failure around it is Invalid, Subject MLflow: the model
// version's artifacts (or the path asked for) cannot be used, and asking
// again cannot change that.
var ErrUnsafePath = errors.New("artifact path escapes the model directory")

// unsafePath is the failure for an unsafe path p.
func unsafePath(p string) error {
	return failure.New(failure.Invalid, failure.MLflow, "unsafe artifact path "+quote(p), ErrUnsafePath)
}

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
// behind runs:/ and models:/ sources): the whole tree is listed first, and
// the download limits (WithDownloadLimits) are checked against the listing
// before any file is fetched. When the server does not proxy the version's
// storage (s3://, gs://, ...), the files named by the MLmodel file are
// fetched through model-versions/get-artifact, which cannot list
// directories. A version over a limit, or with an unsafe path, is Invalid;
// an artifact host not allowed is Refused.
func (c *Client) DownloadVersion(ctx context.Context, name, version, dir string) (*Manifest, error) {
	uri, err := c.GetDownloadURI(ctx, name, version)
	if err != nil {
		return nil, err
	}
	m := &Manifest{ArtifactURI: uri}
	b := c.newBudget(name, version)
	loc, err := c.artifactLocation(ctx, uri, 0)
	switch {
	case err == nil:
		m.ResolvedURI = loc.uri()
		var files []treeFile
		if files, err = loc.listTree(ctx, b); err == nil {
			err = loc.fetch(ctx, files, dir, m, b)
		}
	case errors.Is(err, errNotProxied):
		err = c.downloadByMLmodel(ctx, name, version, dir, m, b)
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

// uri is the folder as an mlflow-artifacts URI, with its host when it is not
// the tracking server.
func (p proxied) uri() string {
	if p.client.base == p.client.home {
		return "mlflow-artifacts:/" + p.path
	}
	return "mlflow-artifacts://" + p.client.base.Host + "/" + p.path
}

var errNotProxied = errors.New("artifact storage is not proxied by the tracking server")

// artifactLocation resolves an artifact URI to a folder behind an artifact
// proxy, following runs:/ and models:/ indirections. Every URI here is
// MLflow's answer: an mlflow-artifacts URI naming another host than the
// tracking server's is followed only to a host of WithArtifactHosts, with
// a client that holds no credentials, and refused otherwise.
func (c *Client) artifactLocation(ctx context.Context, uri string, depth int) (proxied, error) {
	if depth > 4 {
		return proxied{}, failure.Errorf(failure.Other, failure.MLflow, "artifact URI %s: too many indirections", quote(uri))
	}
	u, err := url.Parse(uri)
	if err != nil {
		return proxied{}, failure.New(failure.Other, failure.MLflow, "invalid artifact URI "+quote(uri), shortErr(err))
	}
	switch u.Scheme {
	case "mlflow-artifacts":
		p := strings.Trim(u.Path, "/")
		switch {
		case u.Host == "" || strings.EqualFold(u.Host, c.home.Host):
			return proxied{client: c, path: p}, nil
		case c.hostAllowed(u.Host):
			// The tracking server's scheme, since the URI does not
			// say; no credentials (authorize would not send them
			// anyway: this is not the tracking server).
			other := *c
			base := *c.home
			base.Host, base.Path, base.RawPath = u.Host, "", ""
			other.base, other.auth = &base, Auth{}
			return proxied{client: &other, path: p}, nil
		default:
			return proxied{}, refuseHost(u.Host)
		}
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
			return proxied{}, failure.Errorf(failure.Other, failure.MLflow, "unsupported model URI %s", quote(uri))
		}
		next, err := c.GetDownloadURI(ctx, name, version)
		if err != nil {
			return proxied{}, err
		}
		return c.artifactLocation(ctx, next, depth+1)
	default:
		return proxied{}, fmt.Errorf("%w: %s", errNotProxied, quote(u.Scheme))
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
		return nil, failure.New(failure.Other, failure.MLflow, "GET mlflow-artifacts list", fmt.Errorf("cannot decode the listing: %w", shortErr(err)))
	}
	return out.Files, nil
}

// treeFile is a file of a listed tree: its path below the model directory
// and the size the listing gave.
type treeFile struct {
	rel  string
	size int64
}

// listTree lists the whole folder p, level by level, checking the paths and
// the budget's limits on files, depth and size as it goes: a version over
// a limit fails before a byte of it is fetched.
func (p proxied) listTree(ctx context.Context, b *budget) ([]treeFile, error) {
	var files []treeFile
	seen := map[string]bool{}
	for dirs := []string{""}; len(dirs) > 0; dirs = dirs[1:] {
		rel := dirs[0]
		entries, err := p.list(ctx, rel)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			// The listing names entries by their path relative to the
			// listed root; older servers give the base name only.
			name := path.Base(e.Path)
			if e.Path == "" || name == "." || name == ".." || name == "/" {
				return nil, unsafePath(e.Path)
			}
			child, err := SafeJoin(rel, name)
			if err != nil {
				return nil, err
			}
			if seen[child] {
				return nil, failure.Errorf(failure.Invalid, failure.MLflow, "the artifact listing names %s twice", quote(child))
			}
			seen[child] = true
			if err := b.entry(); err != nil {
				return nil, err
			}
			if e.IsDir {
				if err := b.folder(child); err != nil {
					return nil, err
				}
				dirs = append(dirs, child)
				continue
			}
			if err := b.declare(child, e.FileSize); err != nil {
				return nil, err
			}
			files = append(files, treeFile{rel: child, size: e.FileSize})
		}
	}
	if err := b.checkDeclared(); err != nil {
		return nil, err
	}
	return files, nil
}

// fetch downloads the listed files of p into dir.
func (p proxied) fetch(ctx context.Context, files []treeFile, dir string, m *Manifest, b *budget) error {
	for _, tf := range files {
		full := strings.Trim(path.Join(p.path, tf.rel), "/")
		u := p.client.endpoint(artifactsPrefix+"/"+full, nil)
		f, err := p.client.downloadFile(ctx, u, dir, tf.rel, b, 0)
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
	if err := c.downloadByMLmodel(ctx, name, version, dir, m, c.newBudget(name, version)); err != nil {
		return nil, err
	}
	return m.Files, nil
}

// downloadByMLmodel fetches the files the MLmodel file names, for storage
// the server cannot list: the budget is checked as they stream, and the
// MLmodel file, read into memory, may have maxMetadataBytes.
func (c *Client) downloadByMLmodel(ctx context.Context, name, version, dir string, m *Manifest, b *budget) error {
	get := func(rel string, limit int64) (File, error) {
		if err := b.entry(); err != nil {
			return File{}, err
		}
		if err := b.folder(path.Dir(rel)); err != nil {
			return File{}, err
		}
		u := c.endpoint("/model-versions/get-artifact", url.Values{"name": {name}, "version": {version}, "path": {rel}})
		return c.downloadFile(ctx, u, dir, rel, b, limit)
	}
	mlmodel, err := get("MLmodel", maxMetadataBytes)
	if err != nil {
		return fmt.Errorf("the version's storage cannot be listed and its MLmodel file cannot be read: %w", err)
	}
	m.Files = append(m.Files, mlmodel)
	data, err := os.ReadFile(filepath.Join(dir, "MLmodel"))
	if err != nil {
		return err
	}
	for _, rel := range filesNamedBy(data) {
		f, err := get(rel, 0)
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

// SafeJoin joins rel (forward slashes) below dir, refusing absolute paths and
// any path that would leave dir.
func SafeJoin(dir, rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.Contains(rel, "\\") || strings.ContainsRune(rel, 0) {
		return "", unsafePath(rel)
	}
	local := filepath.FromSlash(rel)
	if !filepath.IsLocal(local) {
		return "", unsafePath(rel)
	}
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "", unsafePath(rel)
		}
	}
	if dir == "" {
		return path.Clean(rel), nil
	}
	return filepath.Join(dir, local), nil
}

// ReadArtifact reads one file of a model version (at most limit bytes, 1 MiB
// when limit is not positive), e.g. serving_input_example.json: through the
// artifact proxy, or through model-versions/get-artifact for storage the
// server does not proxy.
func (c *Client) ReadArtifact(ctx context.Context, name, version, rel string, limit int64) ([]byte, error) {
	if _, err := SafeJoin("", rel); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = maxMetadataBytes
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
