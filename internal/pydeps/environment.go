package pydeps

// This file holds the values PEP 508 environment markers are evaluated
// against: what an image tells of its platform and Python.

import "strings"

// Environment holds the value of each PEP 508 marker variable for the
// Python of an image. An empty field is unknown, and a comparison with an
// unknown value can go either way: a requirement whose marker depends on it
// is checked, not skipped. The marker variable extra is not here: a
// requirements file has no extras context, so it is always "".
type Environment struct {
	PythonVersion                string // python_version, e.g. "3.11"
	PythonFullVersion            string // python_full_version, e.g. "3.11.7"
	OSName                       string // os_name, e.g. "posix"
	SysPlatform                  string // sys_platform, e.g. "linux"
	PlatformRelease              string // platform_release: the kernel's, unknown for an image
	PlatformSystem               string // platform_system, e.g. "Linux"
	PlatformVersion              string // platform_version: the kernel's, unknown for an image
	PlatformMachine              string // platform_machine, e.g. "x86_64"
	PlatformPythonImplementation string // platform_python_implementation, e.g. "CPython"
	ImplementationName           string // implementation_name, e.g. "cpython"
	ImplementationVersion        string // implementation_version, e.g. "3.11.7"
}

// NewEnvironment returns the marker values of an image as InspectImage saw
// it. The kernel's release and version depend on the node, not the image,
// and stay unknown; so does python_full_version when only the lib/pythonX.Y
// folder named the python (3.11 is not 3.11.0). The implementation is
// CPython: MLflow serves models with it, and other pythons (PyPy's
// lib/pypy3.X) are not found by InspectImage anyway. A nil in gives an
// environment where every value but the implementation is unknown.
func NewEnvironment(in *Installed) *Environment {
	env := &Environment{
		PlatformPythonImplementation: "CPython",
		ImplementationName:           "cpython",
	}
	if in == nil {
		return env
	}
	env.PythonVersion = pythonMajorMinor(in.Python)
	if _, err := parseVersion(in.PythonFull); err == nil && len(releaseAsWritten(in.PythonFull)) >= 3 {
		env.PythonFullVersion = strings.TrimSpace(in.PythonFull)
		env.ImplementationVersion = env.PythonFullVersion
	}
	switch in.OS {
	case "linux":
		env.OSName, env.SysPlatform, env.PlatformSystem = "posix", "linux", "Linux"
	case "windows":
		env.OSName, env.SysPlatform, env.PlatformSystem = "nt", "win32", "Windows"
	}
	env.PlatformMachine = platformMachine(in.Architecture, in.Variant)
	return env
}

// platformMachine returns what Python's platform.machine() says on a Linux
// kernel of an OCI architecture (and arm variant), "" when not known.
func platformMachine(arch, variant string) string {
	switch arch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	case "arm":
		switch variant {
		case "v6":
			return "armv6l"
		case "v5":
			return "armv5tel"
		}
		return "armv7l"
	case "ppc64le", "s390x", "riscv64":
		return arch
	}
	return ""
}

// markerVariables are the PEP 508 variables and where each one's value is.
var markerVariables = map[string]func(*Environment) string{
	"python_version":                 func(e *Environment) string { return e.PythonVersion },
	"python_full_version":            func(e *Environment) string { return e.PythonFullVersion },
	"os_name":                        func(e *Environment) string { return e.OSName },
	"sys_platform":                   func(e *Environment) string { return e.SysPlatform },
	"platform_release":               func(e *Environment) string { return e.PlatformRelease },
	"platform_system":                func(e *Environment) string { return e.PlatformSystem },
	"platform_version":               func(e *Environment) string { return e.PlatformVersion },
	"platform_machine":               func(e *Environment) string { return e.PlatformMachine },
	"platform_python_implementation": func(e *Environment) string { return e.PlatformPythonImplementation },
	"implementation_name":            func(e *Environment) string { return e.ImplementationName },
	"implementation_version":         func(e *Environment) string { return e.ImplementationVersion },
	"extra":                          nil, // always "", and known
}
