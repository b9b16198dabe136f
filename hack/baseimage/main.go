// Command baseimage turns a root filesystem folder (a Debian rootfs made by
// mmdebstrap with a Python virtual environment in it) into a reproducible
// OCI image with go-containerregistry, pushes it, and unpacks it again for
// testing. hack/baseimage.sh drives it; see docs/base-images.md.
//
//	baseimage assemble -rootfs DIR -layout DIR -split /opt/venv -epoch N -env K=V ... [-label K=V ...]
//	baseimage digest   -layout DIR                  print the image's digest
//	baseimage push     -layout DIR -ref REPO[:TAG] [-insecure]
//	baseimage extract  -layout DIR -dir DIR          unpack the layers (as root: owners kept)
//	baseimage config   -layout DIR                  print the config's Env (one K=V a line), then
//	                                                WORKDIR=<WorkingDir> and USER=<User>
//
// The layers are byte-for-byte reproducible: entries in lexical order, every
// time set to -epoch, numeric owners as in the rootfs and no user or group
// names, no extended attributes, hard links kept as links, device nodes,
// sockets and pipes left out, and gzip at a fixed level (Go's compress/gzip,
// no name and no time in its header). What is in the folder is what goes in:
// the shell script removes caches, logs and the like before.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// version is part of the cache key (hack/baseimage.sh hashes these sources
// too); bump it when the layer format changes on purpose.
const version = "1"

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "assemble":
		err = assembleCmd(args)
	case "digest":
		err = digestCmd(args)
	case "push":
		err = pushCmd(args)
	case "extract":
		err = extractCmd(args)
	case "config":
		err = configCmd(args)
	case "version":
		fmt.Println(version)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseimage:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: baseimage assemble|digest|push|extract|config|version [flags] (see the source's comment)")
	os.Exit(2)
}

func parse(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			return fmt.Errorf("%s: -%s is required", fs.Name(), name)
		}
	}
	return nil
}
