// Package rollout holds the operator's pure decisions: how far a Deployment's
// rollout has come, and what the summary conditions of a ModelDeployment say.
// It uses no client, network or clock it was not handed.
package rollout
