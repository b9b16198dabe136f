package mlflow

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mlflow-operator/mlflow-operator/internal/failure"
	"github.com/mlflow-operator/mlflow-operator/internal/text"
)

// StatusReady is the status of a model version whose files are all
// registered; only such versions resolve.
const StatusReady = "READY"

// Tag is a key-value tag of a registry object.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ModelVersion is a registered model version. MLflow omits empty fields, so
// every field may be zero.
type ModelVersion struct {
	Name                 string   `json:"name"`
	Version              string   `json:"version"`
	CreationTimestamp    int64    `json:"creation_timestamp,omitempty"`
	LastUpdatedTimestamp int64    `json:"last_updated_timestamp,omitempty"`
	CurrentStage         string   `json:"current_stage,omitempty"`
	Description          string   `json:"description,omitempty"`
	Source               string   `json:"source,omitempty"`
	RunID                string   `json:"run_id,omitempty"`
	Status               string   `json:"status,omitempty"`
	StatusMessage        string   `json:"status_message,omitempty"`
	Tags                 []Tag    `json:"tags,omitempty"`
	Aliases              []string `json:"aliases,omitempty"`
	RunLink              string   `json:"run_link,omitempty"`
	ModelID              string   `json:"model_id,omitempty"`
}

// RegisteredModel is a registered model.
type RegisteredModel struct {
	Name                 string          `json:"name"`
	CreationTimestamp    int64           `json:"creation_timestamp,omitempty"`
	LastUpdatedTimestamp int64           `json:"last_updated_timestamp,omitempty"`
	Description          string          `json:"description,omitempty"`
	LatestVersions       []ModelVersion  `json:"latest_versions,omitempty"`
	Aliases              []ModelAliasRef `json:"aliases,omitempty"`
}

// ModelAliasRef is an alias of a registered model.
type ModelAliasRef struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// GetRegisteredModel fetches a registered model by name.
func (c *Client) GetRegisteredModel(ctx context.Context, name string) (*RegisteredModel, error) {
	var out struct {
		RegisteredModel RegisteredModel `json:"registered_model"`
	}
	if err := c.getJSON(ctx, "GET registered-models/get", "registered-models/get", url.Values{"name": {name}}, &out); err != nil {
		return nil, err
	}
	return &out.RegisteredModel, nil
}

// GetModelVersionByAlias fetches the version an alias points at.
func (c *Client) GetModelVersionByAlias(ctx context.Context, name, alias string) (*ModelVersion, error) {
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	if err := c.getJSON(ctx, "GET registered-models/alias", "registered-models/alias",
		url.Values{"name": {name}, "alias": {alias}}, &out); err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// GetLatestVersions fetches the newest version in each of stages (all stages
// when none are given).
func (c *Client) GetLatestVersions(ctx context.Context, name string, stages ...string) ([]ModelVersion, error) {
	var out struct {
		ModelVersions []ModelVersion `json:"model_versions"`
	}
	if err := c.getJSON(ctx, "GET registered-models/get-latest-versions", "registered-models/get-latest-versions",
		url.Values{"name": {name}, "stages": stages}, &out); err != nil {
		return nil, err
	}
	return out.ModelVersions, nil
}

// GetModelVersion fetches one version.
func (c *Client) GetModelVersion(ctx context.Context, name, version string) (*ModelVersion, error) {
	var out struct {
		ModelVersion ModelVersion `json:"model_version"`
	}
	if err := c.getJSON(ctx, "GET model-versions/get", "model-versions/get",
		url.Values{"name": {name}, "version": {version}}, &out); err != nil {
		return nil, err
	}
	return &out.ModelVersion, nil
}

// Reference says which version of a registered model to follow: exactly one
// of Alias, Stage and Version is set.
type Reference struct {
	Name    string
	Alias   string
	Stage   string
	Version string
}

func (r Reference) String() string {
	switch {
	case r.Alias != "":
		return fmt.Sprintf("%s@%s", r.Name, r.Alias)
	case r.Stage != "":
		return fmt.Sprintf("%s (stage %s)", r.Name, r.Stage)
	default:
		return fmt.Sprintf("%s version %s", r.Name, r.Version)
	}
}

// Resolve answers which version ref means now. Only READY versions resolve.
// Failures are *failure.Error whose Subject tells what is missing: a
// NotFound Model, Alias, Stage (no READY version in it) or Version, a
// NotReady Version; or, when MLflow could not answer, the request's Kind
// with Subject MLflow. An answer that is not a usable version (its number
// not ^[1-9][0-9]*$ of at most 20 digits, its source empty, over 4 KiB or
// with control characters) is Other, Subject MLflow: MLflow is outside
// input, and its next answer may be better.
func (c *Client) Resolve(ctx context.Context, ref Reference) (*ModelVersion, error) {
	var (
		mv  *ModelVersion
		err error
	)
	switch {
	case ref.Alias != "":
		mv, err = c.GetModelVersionByAlias(ctx, ref.Name, ref.Alias)
		if err != nil {
			return nil, c.explainMissing(ctx, ref, err, failure.Alias, fmt.Sprintf("alias %q of model %q does not exist", ref.Alias, ref.Name))
		}
	case ref.Stage != "":
		var versions []ModelVersion
		versions, err = c.GetLatestVersions(ctx, ref.Name, ref.Stage)
		if err != nil {
			return nil, c.explainMissing(ctx, ref, err, failure.Model, fmt.Sprintf("model %q does not exist", ref.Name))
		}
		mv = newestInStage(versions, ref.Stage)
		if mv == nil {
			return nil, failure.Errorf(failure.NotFound, failure.Stage, "model %q has no READY version in stage %s", ref.Name, ref.Stage)
		}
	case ref.Version != "":
		mv, err = c.GetModelVersion(ctx, ref.Name, ref.Version)
		if err != nil {
			return nil, c.explainMissing(ctx, ref, err, failure.Version, fmt.Sprintf("version %s of model %q does not exist", ref.Version, ref.Name))
		}
	default:
		return nil, failure.New(failure.Other, failure.MLflow, "the model reference names no alias, stage or version", nil)
	}
	// What MLflow answers is outside input: the version goes into image
	// tags and labels, the source decides what is downloaded, and a "{}"
	// answer must not pass as a READY version without a number.
	if len(mv.Version) > maxVersion || !validVersion.MatchString(mv.Version) {
		return nil, failure.Errorf(failure.Other, failure.MLflow, "MLflow answered an invalid model version %s", quote(mv.Version))
	}
	if mv.Status != "" && mv.Status != StatusReady {
		msg := fmt.Sprintf("version %s of model %q is %s, not READY", mv.Version, ref.Name, text.Shorten(mv.Status, maxMessage))
		if mv.StatusMessage != "" {
			msg += " (" + text.Shorten(mv.StatusMessage, maxMessage) + ")"
		}
		return nil, failure.New(failure.NotReady, failure.Version, msg, nil)
	}
	if why := invalidField(mv.Source, maxSource, true); why != "" {
		return nil, failure.Errorf(failure.Other, failure.MLflow, "MLflow answered an invalid source for version %s of model %q: %s", mv.Version, ref.Name, why)
	}
	if why := invalidField(mv.RunID, maxRunID, false); why != "" {
		return nil, failure.Errorf(failure.Other, failure.MLflow, "MLflow answered an invalid run ID for version %s of model %q: %s", mv.Version, ref.Name, why)
	}
	return mv, nil
}

// validVersion is what a model version number looks like, as the API's
// pinned version is validated (with maxVersion).
var validVersion = regexp.MustCompile(`^[1-9][0-9]*$`)

// Bounds of the strings of a model version that go into image tags and
// labels.
const (
	maxVersion = 20
	maxSource  = 4 << 10
	// maxRunID is generous: MLflow's run IDs have 32 characters.
	maxRunID = 256
)

// invalidField says why s is not a usable source or run ID (empty when it
// is): empty when required, longer than max bytes, or holding control
// characters, which have no place in a URI or a label.
func invalidField(s string, limit int, required bool) string {
	switch {
	case s == "" && required:
		return "it is empty"
	case len(s) > limit:
		return fmt.Sprintf("it has %d bytes, more than %d", len(s), limit)
	case strings.IndexFunc(s, unicode.IsControl) >= 0 || !utf8.ValidString(s):
		return fmt.Sprintf("%s holds control characters or invalid UTF-8", quote(s))
	}
	return ""
}

// explainMissing turns a failed lookup of ref into the failure Resolve
// returns. A "not found" (or, for aliases, the 400 INVALID_PARAMETER_VALUE
// MLflow answers for a missing alias) is checked against the registered
// model itself, to tell a missing model from a missing alias or version:
// missing is what the lookup concerns and msg says so. Any other failure is
// MLflow's, with the request's Kind.
func (c *Client) explainMissing(ctx context.Context, ref Reference, err error, missing failure.Subject, msg string) error {
	badRequest := failure.KindOf(err) == failure.Other && statusOf(err) == http.StatusBadRequest
	if !failure.IsNotFound(err) && !badRequest {
		return cannotResolve(ref, err)
	}
	if _, merr := c.GetRegisteredModel(ctx, ref.Name); merr != nil {
		if failure.IsNotFound(merr) {
			return failure.Errorf(failure.NotFound, failure.Model, "registered model %q does not exist", ref.Name)
		}
		return cannotResolve(ref, merr)
	}
	if badRequest && ref.Alias == "" {
		// Only a missing alias is a 400. A missing stage or version is a
		// 404; a 400 there is about the request (a version that is not a
		// number), not a missing object.
		return cannotResolve(ref, err)
	}
	return failure.New(failure.NotFound, missing, msg, nil)
}

// cannotResolve reports a lookup that failed for another reason than a
// missing object: the request's Kind (Unreachable, Unauthorized, Other),
// about MLflow itself, with the request's failure as the cause.
func cannotResolve(ref Reference, err error) error {
	return failure.New(failure.KindOf(err), failure.MLflow, fmt.Sprintf("cannot resolve %s", ref), err)
}

// newestInStage is the READY version of stage with the highest number.
func newestInStage(versions []ModelVersion, stage string) *ModelVersion {
	var ready []ModelVersion
	for _, v := range versions {
		if v.CurrentStage == stage && (v.Status == "" || v.Status == StatusReady) {
			ready = append(ready, v)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	sort.Slice(ready, func(i, j int) bool { return versionNumber(ready[i].Version) > versionNumber(ready[j].Version) })
	return &ready[0]
}

func versionNumber(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}
