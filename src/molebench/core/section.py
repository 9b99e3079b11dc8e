"""The base of every config section with known keys (molebench.config's models, core.training.TrainConfig): types as
strict as the JSON schema generated from them (no string for a number), and an unknown key refused with a message
that names it and the known keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _only_known_keys(cls, values):
        if isinstance(values, dict):
            unknown = [key for key in values if key not in cls.model_fields]
            if unknown:
                raise ValueError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                                 f"known keys: {', '.join(cls.model_fields)}")
        return values


def problems(err: ValidationError, where: str = "") -> str:
    """One line per problem of a pydantic error, each starting with the dotted key at fault (`where` first)."""
    lines = []
    for problem in err.errors():
        key = ".".join([where, *map(str, problem["loc"])] if where else map(str, problem["loc"]))
        lines.append(f"{key or 'config'}: {problem['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)
