// Package pydeps checks whether a base image holds the Python distributions
// an MLflow model needs, before the operator builds an image on top of it.
//
// It reads the model's side from the files MLflow writes next to a model
// (requirements.txt, python_env.yaml), the image's side from the layers of
// its filesystem (the metadata of installed distributions, the lib/pythonX.Y
// folders, the image config's platform and PYTHON_VERSION), and compares the
// two with PEP 440 version rules, skipping requirements whose PEP 508
// environment markers do not hold on the image's platform.
//
// The package knows nothing of Kubernetes: callers turn a Report into
// conditions and events, and decide what a failed check means.
package pydeps
