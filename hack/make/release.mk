# The release bundle (hack/release.sh). Included by the Makefile.

##@ Release

# VERSION (vX.Y.Z) and IMG (the image repository, no tag) are required;
# RELEASE_DIGEST=sha256:... skips `make image-push`; RELEASE_OUT_DIR
# (default dist/) is where the bundle goes.
# The Makefile's default IMG (a :dev tag) is not a release repository: IMG
# must be given.
RELEASE_IMG = $(if $(filter file,$(origin IMG)),,$(IMG))

.PHONY: release
release: $(KUSTOMIZE) helm ## Write dist/install.yaml, the chart .tgz and SHA256SUMS for VERSION=vX.Y.Z IMG=<repository> (pushes the image unless RELEASE_DIGEST is set).
	VERSION="$(VERSION)" IMG="$(RELEASE_IMG)" RELEASE_DIGEST="$(RELEASE_DIGEST)" RELEASE_OUT_DIR="$(RELEASE_OUT_DIR)" \
		HELM="$(HELM)" KUSTOMIZE="$(KUSTOMIZE)" hack/release.sh

# hack/release.sh run alone asks make where kustomize is.
.PHONY: print-kustomize
print-kustomize:
	@echo $(KUSTOMIZE)

# test/chart runs hack/release.sh: kustomize is built before the suites.
TEST_DEPS += kustomize
TEST_ENV += KUSTOMIZE=$(KUSTOMIZE)
