"""Writes Unity .meta files for unity_package/ (git-installed UPM packages are immutable: Unity
ignores assets without a .meta there). GUIDs are derived from the path, so reruns are stable.
    python -m tests.unity.gen_meta"""
from __future__ import annotations

import hashlib
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "unity_package"

TAIL = "  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n"
IMPORTER = {
    ".cs": "MonoImporter:\n  externalObjects: {}\n  serializedVersion: 2\n  defaultReferences: []\n  executionOrder: 0\n"
           "  icon: {instanceID: 0}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n",
    ".asmdef": "AssemblyDefinitionImporter:\n" + TAIL,
    ".md": "TextScriptImporter:\n" + TAIL,
    ".json": "PackageManifestImporter:\n  externalObjects: {}\n  userData: \n  assetBundleName: \n  assetBundleVariant: \n",
}


def wanted() -> list[Path]:
    """Files and folders Unity imports (everything outside folders ending in ~ and dot-folders)."""
    out = []
    for p in sorted(PKG.rglob("*")):
        rel = p.relative_to(PKG)
        if any(part.endswith("~") or part.startswith(".") for part in rel.parts) or p.suffix == ".meta":
            continue
        out.append(p)
    return out


def meta_text(p: Path) -> str:
    guid = hashlib.md5(("com.sentistts.cosyvoice2/" + p.relative_to(PKG).as_posix()).encode()).hexdigest()
    if p.is_dir():
        return f"fileFormatVersion: 2\nguid: {guid}\nfolderAsset: yes\nDefaultImporter:\n{TAIL}"
    return f"fileFormatVersion: 2\nguid: {guid}\n" + IMPORTER.get(p.suffix, "DefaultImporter:\n" + TAIL)


def main() -> None:
    for p in wanted():
        p.with_name(p.name + ".meta").write_text(meta_text(p), encoding="utf-8")
    print(f"{len(wanted())} .meta files written")


if __name__ == "__main__":
    main()
