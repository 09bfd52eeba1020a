"""``nudge creative …``: import a brand's offers, guidelines and creative library, and search the library."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from agents.brand import BrandImportSummary, import_brand
from agents.creative import reindex_all
from agents.embeddings import embeddings_for
from agents.files import Problem
from agents.ports import RetrievedCreative
from agents.retrieval import VectorRetriever
from agents.vectorstore import vector_store
from core.errors import ValidationFailed
from core.models import Channel
from core.settings import Settings, VectorStoreKind, get_settings
from nudge.commands.common import unit_of_work

SAMPLE_BRAND = Path(__file__).resolve().parent.parent.parent / "data" / "samples" / "brand"
TITLE_CHARS = 60

app = typer.Typer(help="The brand's offers, guidelines and creative library the agents draw on.", no_args_is_help=True)


@app.command("import")
def import_(
    folder: Annotated[
        Path,
        typer.Argument(file_okay=False, help="A brand folder: offers.json, guidelines.json, creative.json."),
    ] = SAMPLE_BRAND,
    reindex: Annotated[bool, typer.Option(help="Embed and index every item again (after changing models).")] = False,
) -> None:
    """Import offers, guidelines and creative (all or nothing), then index the new and changed items for search."""
    settings = get_settings()
    with unit_of_work(settings) as session, _readable_problems():
        store = vector_store(settings, embeddings_for(settings), fresh=reindex)
        summary = import_brand(session, folder, store=None if reindex else store)
        indexed = reindex_all(session, store) if reindex else sum(part.indexed for part in summary.creative)
    typer.echo("\n".join(describe_brand_import(summary, indexed, store_name(settings))))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What the campaign is about, in plain words.")],
    channel: Annotated[Channel | None, typer.Option(help="Only creative for this channel.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many items to show.")] = 5,
) -> None:
    """The library's best matches for QUERY, ranked by similarity blended with past performance."""
    settings = get_settings()
    with unit_of_work(settings) as session:
        retriever = VectorRetriever(vector_store(settings, embeddings_for(settings)), session)
        found = retriever.retrieve(query, channel=channel, k=k)
    typer.echo("\n".join(describe_results(found)))


@contextmanager
def _readable_problems() -> Iterator[None]:
    """A brand import's problems name their file, which the generic ``row``/``column`` lines would drop."""
    try:
        yield
    except ValidationFailed as error:
        if not isinstance(error.details, list):
            raise
        raise ValidationFailed(error.message, details=[_line(detail) for detail in error.details]) from error


def _line(detail: Any) -> str:
    problem = Problem(detail["file"], detail["row"], detail["column"], detail["reason"], detail["value"])
    return problem.describe()


def store_name(settings: Settings) -> str:
    kind = "Pinecone" if settings.vector_store is VectorStoreKind.PINECONE else "local"
    return f"the {kind} vector store (namespace {settings.pinecone_namespace!r})"


def describe_brand_import(summary: BrandImportSummary, indexed: int, store: str) -> list[str]:
    lines: list[str] = []
    if summary.offers is not None:
        offers = summary.offers
        counts = f"{offers.created} new, {offers.updated} updated, {offers.unchanged} unchanged"
        lines.append(f"{offers.file}: {offers.offers} offers ({counts})")
    for part in summary.creative:
        counts = f"{part.created} new, {part.updated} updated, {part.unchanged} unchanged"
        lines.append(f"{part.file}: {part.items} items ({counts})")
    lines.append(f"indexed {indexed} items in {store}")
    sanitized = [entry for part in summary.creative for entry in part.sanitized]
    if sanitized:
        lines.append(f"sanitised {len(sanitized)} fields (invisible text removed before storing):")
        lines += [f"  {entry.file} {entry.describe()}" for entry in sanitized]
    return lines


def describe_results(found: Sequence[RetrievedCreative]) -> list[str]:
    if not found:
        return ["no creative found: import some with `nudge creative import`"]
    width = max(len("id"), *(len(item.external_id) for item in found))
    lines = [f"{'id':<{width}}  score  similarity  performance  title"]
    for item in found:
        title = item.title if len(item.title) <= TITLE_CHARS else item.title[: TITLE_CHARS - 1] + "…"
        scores = f"{item.score:5.3f}  {item.similarity:10.3f}  {item.performance:11.3f}"
        lines.append(f"{item.external_id:<{width}}  {scores}  {title}")
    return lines
