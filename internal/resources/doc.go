// Package resources builds the Kubernetes objects a ModelDeployment owns. Its
// functions are pure: they take the ModelDeployment and plain inputs and return
// the desired object, complete with type, labels and a controller owner
// reference, ready for server-side apply. They use no client, clock or network.
package resources
