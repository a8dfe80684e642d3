"""Evidence: the device key, signed segment manifests chained per recordings folder, the signed
deletion log, sealed exports, and `dashcam verify`.

Layers, each importing only the ones above it:
- `keys`: the per-device Ed25519 key pair (private key 0600, public key exportable).
- `records`: canonical JSON, signed envelopes, file hashes; the only code that signs or checks a signature.
- `chain`: the folder's chain of manifests (head, deletion log) and the `SegmentSigner` that signs each
  finished segment in a thread of its own.
- `seal`: what `dashcam export` adds so a recipient can verify (manifests, deletions, public key, a signed
  export statement, a README).
- `verify`: checks a folder or a file against a public key; needs nothing but the files.
"""
