package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func keyOf(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

func TestHolds(t *testing.T) {
	have := map[string]any{
		"metadata": map[string]any{"name": "iris", "labels": map[string]any{"a": "1", "theirs": "x"}},
		"spec": map[string]any{
			"replicas": int64(3),
			"ports":    []any{map[string]any{"port": int64(8080), "protocol": "TCP", "nodePort": int64(30001)}},
		},
	}
	cases := []struct {
		name string
		want map[string]any
		ok   bool
	}{
		{"a subset", map[string]any{"metadata": map[string]any{"labels": map[string]any{"a": "1"}}}, true},
		{"defaults and others' fields are not compared", map[string]any{"spec": map[string]any{"ports": []any{map[string]any{"port": int64(8080)}}}}, true},
		{"zero values are held by their absence", map[string]any{"spec": map[string]any{"paused": false, "selector": map[string]any{}, "extra": []any{}}}, true},
		{"a changed value", map[string]any{"spec": map[string]any{"replicas": int64(2)}}, false},
		{"a changed label", map[string]any{"metadata": map[string]any{"labels": map[string]any{"a": "2"}}}, false},
		{"a missing field", map[string]any{"spec": map[string]any{"minReadySeconds": int64(5)}}, false},
		{"a list of another length", map[string]any{"spec": map[string]any{"ports": []any{map[string]any{"port": int64(8080)}, map[string]any{"port": int64(9090)}}}}, false},
		{"a changed list item", map[string]any{"spec": map[string]any{"ports": []any{map[string]any{"port": int64(8081)}}}}, false},
	}
	for _, c := range cases {
		if got := holds(have, c.want); got != c.ok {
			t.Errorf("%s: holds = %v, want %v", c.name, got, c.ok)
		}
	}
}

func TestFreshness(t *testing.T) {
	var f freshness
	key := keyOf("ns", "iris")
	if !f.cached(key, "5") {
		t.Fatal("an object this operator never wrote: the cache is fresh enough")
	}
	f.wrote(key, "7")
	if f.cached(key, "5") {
		t.Fatal("the cache shows an older version than the status write: not fresh")
	}
	// A live read saw a newer version (someone wrote after us): the cache
	// must reach that one.
	f.live(key, "9", false)
	if f.cached(key, "7") {
		t.Fatal("the cache shows our write but not the newer version a live read saw")
	}
	if !f.cached(key, "9") {
		t.Fatal("the cache caught up")
	}
	if !f.cached(key, "8") {
		t.Fatal("once caught up, the object is forgotten")
	}
	f.wrote(key, "10")
	f.live(key, "", true)
	if !f.cached(key, "") {
		t.Fatal("a deleted object awaits nothing")
	}
}
