package mlflow

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
)

// Model version statuses.
const (
	StatusReady               = "READY"
	StatusPendingRegistration = "PENDING_REGISTRATION"
	StatusFailedRegistration  = "FAILED_REGISTRATION"
)

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

// Resolve answers which version ref means now. Only READY versions resolve;
// failures come as *ResolveError with a reason that tells apart a missing
// model, a missing alias, an empty stage, a version not ready, and an
// unreachable or refusing server.
func (c *Client) Resolve(ctx context.Context, ref Reference) (*ModelVersion, error) {
	var (
		mv  *ModelVersion
		err error
	)
	switch {
	case ref.Alias != "":
		mv, err = c.GetModelVersionByAlias(ctx, ref.Name, ref.Alias)
		if err != nil {
			return nil, c.explainMissing(ctx, ref, err, ReasonAliasNotFound, fmt.Sprintf("alias %q of model %q does not exist", ref.Alias, ref.Name))
		}
	case ref.Stage != "":
		var versions []ModelVersion
		versions, err = c.GetLatestVersions(ctx, ref.Name, ref.Stage)
		if err != nil {
			return nil, c.explainMissing(ctx, ref, err, ReasonModelNotFound, fmt.Sprintf("model %q does not exist", ref.Name))
		}
		mv = newestInStage(versions, ref.Stage)
		if mv == nil {
			return nil, &ResolveError{Reason: ReasonStageEmpty, Msg: fmt.Sprintf("model %q has no READY version in stage %s", ref.Name, ref.Stage)}
		}
	case ref.Version != "":
		mv, err = c.GetModelVersion(ctx, ref.Name, ref.Version)
		if err != nil {
			return nil, c.explainMissing(ctx, ref, err, ReasonVersionNotFound, fmt.Sprintf("version %s of model %q does not exist", ref.Version, ref.Name))
		}
	default:
		return nil, &ResolveError{Reason: ReasonMLflowError, Msg: "the model reference names no alias, stage or version"}
	}
	if mv.Status != "" && mv.Status != StatusReady {
		msg := fmt.Sprintf("version %s of model %q is %s, not READY", mv.Version, ref.Name, mv.Status)
		if mv.StatusMessage != "" {
			msg += " (" + mv.StatusMessage + ")"
		}
		return nil, &ResolveError{Reason: ReasonVersionNotReady, Msg: msg}
	}
	return mv, nil
}

// explainMissing turns a failed lookup into a ResolveError. A "not found"
// (or, for aliases, the 400 MLflow answers for a missing alias) is checked
// against the registered model itself, to tell a missing model from a
// missing alias or version.
func (c *Client) explainMissing(ctx context.Context, ref Reference, err error, reason, msg string) error {
	kind := KindOf(err)
	if kind != KindNotFound && kind != KindInvalid {
		return &ResolveError{Reason: reasonFor(err), Msg: fmt.Sprintf("cannot resolve %s", ref), Err: err}
	}
	if _, merr := c.GetRegisteredModel(ctx, ref.Name); merr != nil {
		if IsNotFound(merr) {
			return &ResolveError{Reason: ReasonModelNotFound, Msg: fmt.Sprintf("registered model %q does not exist", ref.Name)}
		}
		return &ResolveError{Reason: reasonFor(merr), Msg: fmt.Sprintf("cannot resolve %s", ref), Err: merr}
	}
	if kind == KindInvalid && ref.Alias == "" {
		return &ResolveError{Reason: ReasonMLflowError, Msg: fmt.Sprintf("cannot resolve %s", ref), Err: err}
	}
	return &ResolveError{Reason: reason, Msg: msg}
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
