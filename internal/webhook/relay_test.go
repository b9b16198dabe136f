package webhook

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestRelayForwardKeepsTheNewestEntries(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	r := &Relay{Client: c, Namespace: "op", Now: func() time.Time { return now }}
	ctx := context.Background()
	for i := 0; i < maxRelayEntries+10; i++ {
		now = now.Add(time.Second)
		if err := r.Forward(ctx, fmt.Sprintf("model %d", i), now); err != nil {
			t.Fatal(err)
		}
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "op", Name: RelayName}, cm); err != nil {
		t.Fatal(err)
	}
	if len(cm.Data) != maxRelayEntries {
		t.Fatalf("%d entries, want %d", len(cm.Data), maxRelayEntries)
	}
	for i := 0; i < 10; i++ {
		if _, ok := cm.Data[relayKey(fmt.Sprintf("model %d", i))]; ok {
			t.Errorf("the oldest entry %d was kept", i)
		}
	}
	if _, ok := cm.Data[relayKey(fmt.Sprintf("model %d", maxRelayEntries+9))]; !ok {
		t.Error("the newest entry is missing")
	}
	if err := r.Forward(ctx, string(make([]byte, maxModelName+1)), now); err == nil {
		t.Error("an oversized model name was relayed")
	}
}

func TestRelayListenerActsOnChangedEntriesOnly(t *testing.T) {
	l := &RelayListener{seen: map[string]string{}}
	entry := func(model, at string) string { return fmt.Sprintf(`{"model":%q,"at":%q}`, model, at) }
	data := map[string]string{relayKey("iris"): entry("iris", "2026-11-26T12:00:00Z")}
	if got := l.fresh(data); len(got) != 1 || got[0].Model != "iris" {
		t.Fatalf("first entry: %v", got)
	}
	if got := l.fresh(data); len(got) != 0 {
		t.Fatalf("an unchanged entry fired again: %v", got)
	}
	// A standby with a clock behind still counts: entries compare by value.
	data[relayKey("iris")] = entry("iris", "2026-11-26T11:59:00Z")
	data[relayKey("wine")] = entry("wine", "2026-11-26T12:00:01Z")
	if got := l.fresh(data); len(got) != 2 || got[0].Model != "iris" || got[1].Model != "wine" {
		t.Fatalf("changed entries: %v", got)
	}
	// An entry whose key does not match its model (written by hand) is ignored.
	data["m-forged"] = entry("iris", "2026-11-26T12:05:00Z")
	if got := l.fresh(data); len(got) != 0 {
		t.Fatalf("a forged key fired: %v", got)
	}
	delete(data, relayKey("wine"))
	l.fresh(data)
	if _, ok := l.seen[relayKey("wine")]; ok {
		t.Error("the seen map keeps an entry the ConfigMap dropped")
	}
}

// TestRelayCarriesWhenTheModelChanged: the leader learns the delivery's
// timestamp, not when the standby relayed it; entries of older operators,
// without one, give the relay time.
func TestRelayCarriesWhenTheModelChanged(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	relayed := time.Date(2026, 11, 26, 12, 0, 30, 0, time.UTC)
	changed := relayed.Add(-20 * time.Second)
	r := &Relay{Client: c, Namespace: "op", Now: func() time.Time { return relayed }}
	ctx := context.Background()
	if err := r.Forward(ctx, "iris", changed); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "op", Name: RelayName}, cm); err != nil {
		t.Fatal(err)
	}
	l := &RelayListener{seen: map[string]string{}}
	got := l.fresh(cm.Data)
	if len(got) != 1 || !got[0].Changed.Equal(changed) || !got[0].At.Equal(relayed) {
		t.Fatalf("relayed %+v, want iris changed at %s", got, changed)
	}
	old := map[string]string{relayKey("wine"): `{"model":"wine","at":"2026-11-26T12:00:00Z"}`}
	if got := l.fresh(old); len(got) != 1 || !got[0].Changed.IsZero() {
		t.Fatalf("an entry without a change time: %+v", got)
	}
}
