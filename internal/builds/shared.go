package builds

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"k8s.io/utils/lru"

	v1alpha1 "github.com/mlflow-operator/mlflow-operator/api/v1alpha1"
	"github.com/mlflow-operator/mlflow-operator/internal/resolver"
)

// Many ModelDeployments of one namespace often follow the same model with
// the same image settings (one per team, region or traffic class): their
// builds are the same build. Each would otherwise look the model version up
// in MLflow, look the tag up in the registry, read the model's requirements
// and check them (at 1,000 objects on 50 models, 950 of each to reuse 50
// images). So a finished build's result is shared, for a short while, with
// the builds of the same model version, MLflow connection and image
// settings in the same namespace: they finish at once, with the same image
// and dependency verdict. Only within a namespace: another tenant's build
// proves nothing about what this one's credentials may read or push. Only
// for a short while: the registry is not asked again, and an image deleted
// from it should not be handed out for long.

// sharedFor is how long a result is shared.
const sharedFor = 2 * time.Minute

// maxShared bounds the shared results kept.
const maxShared = 1024

type sharedResult struct {
	result *Result
	at     time.Time
}

// shareKey is what makes two builds the same build: the namespace, the
// model version, the whole MLflow connection and image settings (any
// difference, even one that would not change the image, means no sharing),
// and buildSpec.
func shareKey(md *v1alpha1.ModelDeployment, v resolver.ModelVersion) string {
	// How often to poll is no build setting.
	mlflowSettings := md.Spec.MLflow
	mlflowSettings.PollInterval = nil
	settings, err := json.Marshal(struct {
		MLflow v1alpha1.MLflowConnection
		Image  v1alpha1.ImageSpec
	}{mlflowSettings, md.Spec.Image})
	if err != nil {
		return ""
	}
	// Hashed: every job holds its key, and the settings are most of it.
	sum := sha256.Sum256([]byte(md.Namespace + "\x00" + md.Spec.Model.Name + "\x00" + v.Version + "\x00" + v.Source + "\x00" + buildSpec(md) + "\x00" + string(settings)))
	return hex.EncodeToString(sum[:])
}

// sharedLocked is a shared result for key, if a recent one exists.
func (p *Pool) sharedLocked(key string) *Result {
	if key == "" || p.shared == nil {
		return nil
	}
	v, ok := p.shared.Get(key)
	if !ok {
		return nil
	}
	s := v.(sharedResult)
	if p.now().Sub(s.at) > sharedFor {
		p.shared.Remove(key)
		return nil
	}
	r := *s.result
	r.Reused, r.PushedBytes = true, 0
	r.Message = "reused " + r.Image + " (built for another ModelDeployment of this namespace)"
	return &r
}

// shareLocked offers a successful result to the builds of the same key.
func (p *Pool) shareLocked(key string, r *Result) {
	if key == "" || r == nil || r.Image == "" {
		return
	}
	if p.shared == nil {
		p.shared = lru.New(maxShared)
	}
	p.shared.Add(key, sharedResult{result: r, at: p.now()})
}
