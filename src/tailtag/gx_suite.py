"""Run Great Expectations suites on in-memory DataFrames and build their Data Docs.

Great Expectations is imported inside `run_suites` only: the import costs seconds and
switches on `logging.captureWarnings(True)`, which would hide later Python warnings.
The context is ephemeral (nothing on disk) with its temporary default Data Docs site
removed, analytics and progress bars off; the only files written are the Data Docs
site in `docs_dir`, when one is given.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

DATASOURCE = "tailtag"
GX_LOGGERS = ("great_expectations", "posthog", "backoff")


@dataclass(frozen=True)
class Expect:
    """One expectation, by its GX class name, tagged with the check it belongs to.

    `Expect("ExpectColumnValuesToBeInSet", "archetype.vocabulary", "unknown",
    {"column": "label", "value_set": ["boho", "casual"]})`. The tags travel in the
    expectation's `meta`, so results can be matched back to checks.
    """

    type: str
    check: str
    role: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExpectResult:
    """The outcome of one expectation: GX's `result` dict and any error it raised."""

    success: bool
    result: dict[str, Any]
    error: str | None


def _import_gx() -> Any:
    import great_expectations as gx

    logging.captureWarnings(False)
    for name in GX_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return gx


def _errors(exception_info: Any) -> list[str]:
    """Error messages in a result's `exception_info` (flat, or keyed by metric id)."""
    if not isinstance(exception_info, Mapping):
        return []
    if "raised_exception" in exception_info:
        if exception_info.get("raised_exception"):
            return [str(exception_info.get("exception_message") or "unknown error")]
        return []
    return [msg for value in exception_info.values() for msg in _errors(value)]


def _is_gx_site(path: Path) -> bool:
    return (path / "index.html").is_file() and (path / "static").is_dir()


def run_suites(
    frames: Mapping[str, pd.DataFrame],
    expectations: Mapping[str, Sequence[Expect]],
    *,
    docs_dir: Path | None = None,
    partial_unexpected_count: int = 20,
    progress: bool = False,
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], ExpectResult]]:
    """Validate each frame against its expectations (one suite per frame, named after it).

    Returns (GX's suite results as JSON dicts by frame name, outcomes by (check, role)).
    Results use the SUMMARY format: counts plus the first `partial_unexpected_count`
    unexpected values. With `docs_dir`, GX Data Docs are built there (a previous site in
    that folder is replaced; any other non-empty folder is an error).
    """
    unknown = sorted(set(expectations) - set(frames))
    if unknown:
        raise ValueError(f"expectations for unknown frame(s): {', '.join(unknown)}")
    if docs_dir is not None and docs_dir.exists():
        if not (_is_gx_site(docs_dir) or not any(docs_dir.iterdir())):
            raise ValueError(f"{docs_dir}: exists and is not a Data Docs site; not replacing it")
        shutil.rmtree(docs_dir)

    gx = _import_gx()
    try:
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        sites = {}
        if docs_dir is not None:
            sites[DATASOURCE] = {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(Path(docs_dir).resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        # init_temp_docs_sites=False: the default ephemeral site would write to a fresh
        # temporary folder on every build and never remove it.
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            data_docs_sites=sites,
        )
        context = gx.get_context(project_config=config, mode="ephemeral")
        source = context.data_sources.add_pandas(DATASOURCE)
        result_format = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": partial_unexpected_count,
        }
        suites: dict[str, dict[str, Any]] = {}
        outcomes: dict[tuple[str, str], ExpectResult] = {}
        names = [name for name in frames if expectations.get(name)]
        for name in tqdm(names, desc="validate", disable=not progress):
            batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
            suite = context.suites.add(gx.ExpectationSuite(name=name))
            for exp in expectations[name]:
                cls = getattr(gxe, exp.type)
                suite.add_expectation(
                    cls(**exp.kwargs, meta={"check": exp.check, "role": exp.role})
                )
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch, suite=suite)
            )
            run = definition.run(
                batch_parameters={"dataframe": frames[name]}, result_format=result_format
            )
            suites[name] = run.to_json_dict()
            for res in suites[name]["results"]:
                meta = res["expectation_config"]["meta"]
                errors = _errors(res.get("exception_info"))
                outcomes[(meta["check"], meta["role"])] = ExpectResult(
                    success=bool(res["success"]) and not errors,
                    result=res.get("result") or {},
                    error="; ".join(errors) or None,
                )
        if docs_dir is not None:
            context.build_data_docs(site_names=[DATASOURCE])
    finally:
        # GX modules imported during the run switch warning capture on again.
        logging.captureWarnings(False)
    return suites, outcomes


def docs_pages(docs_dir: Path) -> dict[str, Path]:
    """The Data Docs validation page of each suite in `docs_dir`, by suite name."""
    pages: dict[str, Path] = {}
    root = docs_dir / "validations"
    if root.is_dir():
        for suite_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            found = sorted(suite_dir.rglob("*.html"))
            if found:
                pages[suite_dir.name] = found[-1]
    return pages
