"""``docker:index/image:Image`` and ``docker:index/remoteImage:RemoteImage``.

Image follows pulumi/pulumi-docker ``provider/image.go`` (``dockerBuild``,
``marshalBuildAndApplyDefaults``) and ``provider/provider.go`` (``Check``: the Dockerfile path
is resolved against the program's working directory, the default is ``<context>/Dockerfile``;
a relative path that only exists inside the context is an error with a hint).  The repoDigest
of a local (not pushed) build is the local image id (pulumi/pulumi-docker PR #739).
RemoteImage follows kreuzwerker/terraform-provider-docker.  The harness never pulls and never
pushes: a test run must not depend on a registry.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import docker
import docker.errors
import docker.utils.build

from .context import Provider
from .errors import HarnessError, UntranslatedInputError
from .inputs import str_map
from .keys import T_IMAGE, T_REMOTE_IMAGE
from .records import Record

_BUILDER_VERSIONS = (None, "BuilderV1", "BuilderBuildKit")


class ImageProvider(Provider):
    """Builds images locally (pulumi-docker's native Image)."""

    typ = T_IMAGE

    def check(self, name: str, inputs: dict) -> dict:
        """provider.go Check: the image name and Dockerfile are checked, and the digest of the
        build context (hashContext) is added as build.contextDigest, so that an edited context
        is a change (an Update: a new build)."""
        image_name = inputs.get("imageName")
        if not image_name:
            raise HarnessError(f"{self.typ} {name!r}: imageName is required")
        if inputs.get("skipPush") is not True:
            raise HarnessError(
                f"{self.typ} {name!r}: skipPush must be true (the harness never pushes; "
                f"got {inputs.get('skipPush')!r})"
            )
        self.ctx.check_prefix(self.typ, name, "imageName", image_name)
        _, abs_context, abs_dockerfile = self._paths(name, inputs)
        build = {**(inputs.get("build") or {})}
        build["contextDigest"] = context_digest(abs_context, abs_dockerfile)
        return {**inputs, "build": build}

    def create(self, name: str, inputs: dict) -> tuple[str, dict]:
        image_id, outputs = self._build(name, inputs)
        image_name = inputs["imageName"]
        self.ctx.add(Record(self.typ, name, image_id, image_name, inputs=inputs, outputs=outputs))
        return image_name, outputs

    def update(self, rec: Record, inputs: dict, changed: list[str]) -> None:
        """provider.go Update builds again: a new local image id, so a new repoDigest; the
        resource id (the first image name) stays."""
        image_id, rec.outputs = self._build(rec.name, inputs)
        rec.docker_id, rec.docker_name = image_id, inputs["imageName"]

    def delete(self, rec: Record) -> None:
        """The harness's cleanup (provider.go Delete leaves the image: see updates.py)."""
        try:
            self.ctx.client.api.remove_image(rec.docker_name)
        except docker.errors.ImageNotFound:
            pass

    def _paths(self, name: str, inputs: dict) -> tuple[str, str, str]:
        """The build context as given, and the absolute context and Dockerfile paths."""
        build = inputs.get("build") or {}
        cwd = self.ctx.cwd()
        context = build.get("context") or "."
        dockerfile = build.get("dockerfile") or os.path.join(context, "Dockerfile")
        abs_context = os.path.normpath(os.path.join(cwd, context))
        abs_dockerfile = os.path.normpath(os.path.join(cwd, dockerfile))
        if not os.path.isfile(abs_dockerfile):
            raise self._dockerfile_not_found(name, context, dockerfile)
        if not os.path.isdir(abs_context):
            raise HarnessError(
                f"{self.typ} {name!r}: build context {context!r} is not a directory (resolved against {cwd})"
            )
        return context, abs_context, abs_dockerfile

    def _dockerfile_not_found(self, name: str, context: str, dockerfile: str) -> HarnessError:
        """pulumi-docker Check's errors: the Dockerfile path is relative to the working
        directory, with a hint when it only exists relative to the context."""
        cwd = self.ctx.cwd()
        if os.path.isabs(dockerfile):
            return HarnessError(
                f"{self.typ} {name!r}: expected a relative Dockerfile path; got {dockerfile!r}: not found"
            )
        hint = os.path.join(context, dockerfile)
        if os.path.isfile(os.path.join(cwd, hint)):
            return HarnessError(
                f"{self.typ} {name!r}: could not open dockerfile at relative path {dockerfile!r}. "
                f"Try setting `dockerfile` to {hint!r}"
            )
        return HarnessError(
            f"{self.typ} {name!r}: could not open dockerfile at relative path {dockerfile!r} "
            f"(resolved against {cwd})"
        )

    def _build(self, name: str, inputs: dict) -> tuple[str, dict]:
        """Builds the image (dockerBuild); returns the local image id and the outputs."""
        image_name = inputs["imageName"]
        build = inputs.get("build") or {}
        context, abs_context, abs_dockerfile = self._paths(name, inputs)
        self._check_builder(name, build)
        self._stream_build(
            name, image_name, self._build_kwargs(build, abs_context, abs_dockerfile, image_name)
        )
        image_id = self.ctx.client.api.inspect_image(image_name)["Id"]
        outputs = {
            **inputs,
            "imageName": image_name,
            "baseImageName": image_name,
            "registryServer": "",
            "dockerfile": os.path.relpath(abs_dockerfile, abs_context),
            "context": context,
            "repoDigest": image_id,
        }
        return image_id, outputs

    def _check_builder(self, name: str, build: dict) -> None:
        """Only the host platform builds here; the builder version must be one pulumi-docker
        knows."""
        platform = build.get("platform")
        if platform:
            machine = os.uname().machine
            host = "linux/" + {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
            if platform != host:
                raise UntranslatedInputError(
                    self.typ, name, "build.platform", platform, f"only the host platform {host}"
                )
        if build.get("builderVersion") not in _BUILDER_VERSIONS:
            raise HarnessError(
                f"{self.typ} {name!r}: invalid Docker Builder version {build.get('builderVersion')!r}"
            )

    def _build_kwargs(
        self, build: dict, abs_context: str, abs_dockerfile: str, image_name: str
    ) -> dict[str, Any]:
        """The Docker SDK's build arguments: never pulling, intermediate containers removed."""
        kwargs: dict[str, Any] = dict(
            path=abs_context,
            dockerfile=abs_dockerfile,
            tag=image_name,
            rm=True,
            forcerm=True,
            buildargs=str_map(build.get("args")) or None,
            target=build.get("target") or None,
            pull=False,
            timeout=self.ctx.build_timeout,
        )
        if build.get("addHosts"):
            kwargs["extra_hosts"] = dict(h.split(":", 1) for h in build["addHosts"])
        if build.get("network"):
            kwargs["network_mode"] = build["network"]
        return kwargs

    def _stream_build(self, name: str, image_name: str, kwargs: dict[str, Any]) -> None:
        """Runs the build; a failure raises with the tail of the build log."""
        log_lines: list[str] = []
        try:
            for chunk in self.ctx.client.api.build(decode=True, **kwargs):
                if "stream" in chunk:
                    log_lines.append(chunk["stream"])
                if "error" in chunk or "errorDetail" in chunk:
                    err = chunk.get("error") or chunk.get("errorDetail", {}).get("message")
                    tail = "".join(log_lines)[-4000:]
                    raise HarnessError(
                        f"{self.typ} {name!r}: build of {image_name} failed: {err}\n--- build log tail ---\n{tail}"
                    )
        except docker.errors.APIError as exc:
            raise HarnessError(f"{self.typ} {name!r}: build of {image_name} failed: {exc}") from exc


def context_digest(context: str, dockerfile: str) -> str:
    """A digest of a build context as pulumi-docker's hashContext (provider/provider.go) takes
    it: the Dockerfile, then every file the ignore file (<Dockerfile>.dockerignore, else the
    context's .dockerignore) lets through, by path, mode and content (a symlink by its target).
    Only its changes matter: the value is not the provider's."""
    digest = hashlib.sha256()
    _add_file(digest, dockerfile, "Dockerfile")
    included = docker.utils.build.exclude_paths(
        context,
        _ignore_patterns(context, dockerfile),
        dockerfile=os.path.relpath(dockerfile, context),
    )
    for rel in sorted(included):
        path = os.path.join(context, rel)
        if os.path.islink(path) or os.path.isfile(path):
            _add_file(digest, path, rel)
    return digest.hexdigest()


def _ignore_patterns(context: str, dockerfile: str) -> list[str]:
    """The patterns of <Dockerfile>.dockerignore, else of the context's .dockerignore."""
    for ignore_file in (dockerfile + ".dockerignore", os.path.join(context, ".dockerignore")):
        if os.path.isfile(ignore_file):
            with open(ignore_file) as fh:
                lines = (line.strip() for line in fh.read().splitlines())
                return [line for line in lines if line and not line.startswith("#")]
    return []


def _add_file(digest: Any, path: str, name: str) -> None:
    """Adds one file to a context digest: its name, mode and content (a symlink: its target)."""
    content = hashlib.sha256()
    if os.path.islink(path):
        content.update(os.path.realpath(path).encode())
    else:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                content.update(chunk)
    mode = os.lstat(path).st_mode
    digest.update(f"{name}\0{mode:o}\0".encode() + content.digest())


class RemoteImageProvider(Provider):
    """Adopts an image already present locally (the harness never pulls)."""

    typ = T_REMOTE_IMAGE

    def create(self, name: str, inputs: dict) -> tuple[str, dict]:
        ref = inputs.get("name")
        if not ref:
            raise HarnessError(f"{self.typ} {name!r}: name is required")
        try:
            info = self.ctx.client.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            raise HarnessError(
                f"{self.typ} {name!r}: image {ref!r} is not present locally and the harness never "
                f"pulls (no registry is reachable): build or import it first"
            ) from None
        image_id = info["Id"]
        repo_digest = (info.get("RepoDigests") or [""])[0]
        outputs = {**inputs, "imageId": image_id, "repoDigest": repo_digest, "name": ref}
        self.ctx.add(Record(self.typ, name, image_id, ref, inputs=inputs, outputs=outputs))
        return f"{image_id}{ref}", outputs

    def delete(self, rec: Record) -> None:
        """Removes the image unless keepLocally (forced with forceRemove)."""
        if rec.inputs.get("keepLocally"):
            return
        try:
            self.ctx.client.api.remove_image(
                rec.docker_name, force=bool(rec.inputs.get("forceRemove"))
            )
        except docker.errors.ImageNotFound:
            pass
