//! The repository signing key: generated on first start (RSA-4096, SHA-256; EL9's
//! rpm refuses Ed25519 and SHA-1) or loaded from a configured armored secret key.
//! Signs repomd.xml (detached, armored) and, for apt, Release files.

use std::io::Write;
use std::path::{Path, PathBuf};

use pgp::armor::BlockType;
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, EncryptionCaps,
    KeyType, SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password};

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot read signing key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write signing key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid signing key {path}: {message}")]
    InvalidKey { path: PathBuf, message: String },
    #[error("OpenPGP error: {0}")]
    Pgp(String),
}

impl From<pgp::errors::Error> for SigningError {
    fn from(e: pgp::errors::Error) -> Self {
        SigningError::Pgp(e.to_string())
    }
}

/// One or more keys: during a rotation the next key is configured beside the
/// current one; both public keys are published and everything is signed by both,
/// so hosts holding either key keep verifying.
pub struct Signer {
    keys: Vec<(SignedSecretKey, Password)>,
    public_armored: String,
    fingerprints: Vec<String>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("fingerprints", &self.fingerprints)
            .finish_non_exhaustive()
    }
}

/// Where the generated key lives when none is configured.
pub fn default_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("signing-key.asc")
}

/// The fingerprint of the armored secret key in `path`, read without its
/// passphrase (the public half is not encrypted).
pub fn fingerprint_of(path: &Path) -> Result<String, SigningError> {
    let text = std::fs::read_to_string(path).map_err(|source| SigningError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let (key, _) = SignedSecretKey::from_string(&text).map_err(|e| SigningError::InvalidKey {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(hex::encode(key.fingerprint().as_bytes()).to_uppercase())
}

impl Signer {
    /// Loads the configured key, or the one generated earlier under the data dir,
    /// or generates and saves a new one (mode 0600).
    pub fn load_or_generate(
        configured: Option<&Path>,
        passphrase: Option<String>,
        data_dir: &Path,
    ) -> Result<Signer, SigningError> {
        let path = configured
            .map(Path::to_path_buf)
            .unwrap_or_else(|| default_key_path(data_dir));
        if path.exists() || configured.is_some() {
            return Signer::load(&path, passphrase);
        }
        tracing::info!(path = %path.display(), "generating the repository signing key (RSA-4096)");
        let key = generate()?;
        let armored = key.to_armored_string(ArmorOptions::default())?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SigningError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        write_private(&path, armored.as_bytes())?;
        Signer::from_key(key, Password::empty())
    }

    pub fn load(path: &Path, passphrase: Option<String>) -> Result<Signer, SigningError> {
        let text = std::fs::read_to_string(path).map_err(|source| SigningError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let (key, _) =
            SignedSecretKey::from_string(&text).map_err(|e| SigningError::InvalidKey {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let password = passphrase
            .map(Password::from)
            .unwrap_or_else(Password::empty);
        let signer = Signer::from_key(key, password)?;
        // Fail at start, not at the first publication, when the passphrase is wrong.
        signer
            .detached(b"probe")
            .map_err(|e| SigningError::InvalidKey {
                path: path.to_path_buf(),
                message: format!("cannot sign with it (wrong passphrase?): {e}"),
            })?;
        Ok(signer)
    }

    fn from_key(key: SignedSecretKey, password: Password) -> Result<Signer, SigningError> {
        Signer::from_keys(vec![(key, password)])
    }

    fn from_keys(keys: Vec<(SignedSecretKey, Password)>) -> Result<Signer, SigningError> {
        let publics: Vec<SignedPublicKey> = keys
            .iter()
            .map(|(k, _)| SignedPublicKey::from(k.clone()))
            .collect();
        // One armored block holding every key: the usual keyring export that gpg,
        // rpm/dnf and apt all read.
        let mut out = Vec::new();
        pgp::armor::write(
            &publics.as_slice(),
            BlockType::PublicKey,
            &mut out,
            None,
            true,
        )?;
        let public_armored =
            String::from_utf8(out).map_err(|e| SigningError::Pgp(e.to_string()))?;
        let fingerprints = keys
            .iter()
            .map(|(k, _)| hex::encode(k.fingerprint().as_bytes()).to_uppercase())
            .collect();
        Ok(Signer {
            keys,
            public_armored,
            fingerprints,
        })
    }

    /// Adds the next key of a rotation (loaded like the current one).
    pub fn with_next_key(
        self,
        path: &Path,
        passphrase: Option<String>,
    ) -> Result<Signer, SigningError> {
        let next = Signer::load(path, passphrase)?;
        let mut keys = self.keys;
        keys.extend(next.keys);
        Signer::from_keys(keys)
    }

    /// The ASCII-armored public key, served at /keys/forklift.asc.
    pub fn public_key_armored(&self) -> &str {
        &self.public_armored
    }

    /// Fingerprints of every signing key, current first.
    pub fn fingerprints(&self) -> &[String] {
        &self.fingerprints
    }

    /// An armored detached signature over the exact bytes (repomd.xml.asc,
    /// Release.gpg), one signature packet per key.
    pub fn detached(&self, data: &[u8]) -> Result<String, SigningError> {
        let mut sigs = Vec::with_capacity(self.keys.len());
        for (key, pw) in &self.keys {
            sigs.push(DetachedSignature::sign_binary_data(
                rand::thread_rng(),
                &key.primary_key,
                pw,
                HashAlgorithm::Sha256,
                data,
            )?);
        }
        let mut out = Vec::new();
        pgp::armor::write(&sigs.as_slice(), BlockType::Signature, &mut out, None, true)?;
        String::from_utf8(out).map_err(|e| SigningError::Pgp(e.to_string()))
    }

    /// Whether `armored` (as [`Self::detached`] writes it) holds valid
    /// signatures over `data` by exactly the current keys: false once a
    /// rotation added or removed a key since it was made.
    pub fn signed_by_current_keys(&self, data: &[u8], armored: &str) -> bool {
        let Ok((sigs, _)) = DetachedSignature::from_armor_many(armored.as_bytes()) else {
            return false;
        };
        let Ok(sigs) = sigs.collect::<Result<Vec<_>, _>>() else {
            return false;
        };
        sigs.len() == self.keys.len()
            && self.keys.iter().all(|(key, _)| {
                let public = key.to_public_key();
                sigs.iter()
                    .any(|s| s.verify(&public.primary_key, data).is_ok())
            })
    }

    /// The text of a clearsigned message (InRelease, as [`Self::clearsign`]
    /// writes it) when it holds valid signatures by exactly the current keys;
    /// None otherwise.
    pub fn clearsigned_by_current_keys(&self, armored: &str) -> Option<String> {
        let (msg, _) = CleartextSignedMessage::from_string(armored).ok()?;
        let signed = msg.signed_text();
        let all = msg.signatures().len() == self.keys.len()
            && self.keys.iter().all(|(key, _)| {
                let public = key.to_public_key();
                msg.signatures()
                    .iter()
                    .any(|s| s.verify(&public.primary_key, signed.as_bytes()).is_ok())
            });
        all.then_some(signed)
    }

    /// A clearsigned text (InRelease), signed by every key. rPGP does not strip
    /// trailing whitespace before hashing while gpgv does, so lines must not end
    /// in whitespace.
    pub fn clearsign(&self, text: &str) -> Result<String, SigningError> {
        if text.lines().any(|l| l.ends_with(' ') || l.ends_with('\t')) {
            return Err(SigningError::Pgp(
                "refusing to clearsign text with trailing whitespace".into(),
            ));
        }
        let mut sigs = Vec::with_capacity(self.keys.len());
        for (key, pw) in &self.keys {
            let one = CleartextSignedMessage::sign(rand::thread_rng(), text, &key.primary_key, pw)?;
            sigs.extend(one.signatures().iter().cloned());
        }
        let msg = CleartextSignedMessage::new_many(text, |_| Ok(sigs))?;
        Ok(msg.to_armored_string(ArmorOptions::default())?)
    }
}

fn generate() -> Result<SignedSecretKey, SigningError> {
    let params = SecretKeyParamsBuilder::default()
        .key_type(KeyType::Rsa(4096))
        .can_certify(true)
        .can_sign(true)
        .can_encrypt(EncryptionCaps::None)
        .primary_user_id("Forklift repository signing key <forklift@localhost>".into())
        .preferred_hash_algorithms(
            [HashAlgorithm::Sha256, HashAlgorithm::Sha512]
                .into_iter()
                .collect(),
        )
        .build()
        .map_err(|e| SigningError::Pgp(e.to_string()))?;
    Ok(params.generate(rand::thread_rng())?)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SigningError> {
    let err = |source| SigningError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok(())
}
