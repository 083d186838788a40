"""`sentis-tts voice add|import-spk2info`."""
from __future__ import annotations

import warnings
from pathlib import Path

import click


@click.group("voice")
def voice_group() -> None:
    """Bake prompt voices into a bundle."""


@voice_group.command("add")
@click.option("--bundle", "bundle", type=click.Path(path_type=Path, file_okay=False), required=True, help="bundle folder (needs the speech_tokenizer and campplus graphs)")
@click.option("--name", required=True, help="voice name (letters, digits, _ - .)")
@click.option("--wav", type=click.Path(path_type=Path, dir_okay=False), required=True, help="prompt WAV (PCM 16/24/32-bit or float32, any rate, 1-30 s)")
@click.option("--text", default="", help="transcript of the prompt")
@click.option("--overwrite", is_flag=True, help="replace an existing voice of that name")
def add_command(bundle: Path, name: str, wav: Path, text: str, overwrite: bool) -> None:
    """Bake a voice from a prompt WAV."""
    from .voice import add_voice

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = add_voice(bundle, name, wav, text=text, overwrite=overwrite)
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    frames = entry.get("n_mel_frames", entry.get("n_prompt_frames"))
    tokens = f"{entry['n_tokens']} tokens, " if "n_tokens" in entry else ""
    click.echo(f"voice {name}: {tokens}{frames} mel frames -> {bundle / entry['file']}")


@voice_group.command("import-spk2info")
@click.option("--bundle", "bundle", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--spk2info", type=click.Path(path_type=Path, dir_okay=False), required=True, help="official spk2info.pt")
@click.option("--speaker", "speakers", multiple=True, help="import only these speakers (repeatable)")
@click.option("--overwrite", is_flag=True)
def import_spk2info_command(bundle: Path, spk2info: Path, speakers: tuple[str, ...], overwrite: bool) -> None:
    """Convert the official spk2info.pt voices."""
    from .voice import import_spk2info

    names = import_spk2info(bundle, spk2info, names=list(speakers) or None, overwrite=overwrite)
    click.echo(f"imported {len(names)} voice(s): {', '.join(names)}")
