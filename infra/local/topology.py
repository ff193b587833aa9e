"""What a stack is made of, derived from the settings: the shared context every service module builds from."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.local import jars, versions
from meterlake.config import Settings


@dataclass(frozen=True)
class StackContext:
    settings: Settings
    secrets: dict[str, str]

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir

    @property
    def offset(self) -> int:
        return self.settings.stack.port_offset

    def port(self, service: str, key: str, node: int = 1, step_key: str = "step") -> int:
        spec = versions.service(service)
        step = spec.get(step_key, 0)
        return spec[key] + self.offset + (node - 1) * step

    def home(self, name: str) -> Path:
        return self.state_dir / name

    def jar_dir(self, service: str) -> Path:
        return jars.jar_dir(service, self.settings.jar_cache)

    def heap(self, service: str) -> str:
        return versions.service(service)["heap"]
