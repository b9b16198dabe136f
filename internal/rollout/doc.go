// Package rollout holds the operator's pure rollout decisions: how far a
// Deployment's rollout has come (ObserveDeployment), and what to do next with
// a new version (Decide: start a candidate, smoke-test it, promote it, follow
// the promotion, roll back). It uses no client, network or clock it was not
// handed.
package rollout
