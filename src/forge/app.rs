//! GitHub App authentication, first step: the App's JSON Web Token, as GitHub documents it.
//! The token is RS256, signed with ring from the App's private key (PKCS#1 `RSA PRIVATE KEY`,
//! as GitHub hands it out, or PKCS#8). `iat` is 60 s in the past, against clock drift, `exp` is
//! 9 minutes on (GitHub allows at most 10), and `iss` is the App's id. Errors never quote the
//! key. Pure.

use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

/// What is wrong with an App's private key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM block of a private key.
    #[error(
        "the GitHub App's private key is not a PEM private key (`-----BEGIN RSA PRIVATE KEY-----` or `-----BEGIN PRIVATE KEY-----`)"
    )]
    NotPem,
    /// A PEM block ring refuses as an RSA key.
    #[error("the GitHub App's private key is not a usable RSA key: {0}")]
    Rejected(String),
    /// Signing failed.
    #[error("the GitHub App's JWT could not be signed")]
    Signing,
}

/// An App's private key, ready to sign.
pub struct AppKey(RsaKeyPair);

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey(***)")
    }
}

/// The bytes of the PEM block labelled `label`, when `pem` holds one.
fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    crate::render::flux::decode_base64_bytes(&pem[start..stop])
}

impl AppKey {
    /// Reads a PEM private key.
    pub fn from_pem(pem: &str) -> Result<AppKey, KeyError> {
        let pair = if let Some(der) = pem_block(pem, "RSA PRIVATE KEY") {
            RsaKeyPair::from_der(&der)
        } else if let Some(der) = pem_block(pem, "PRIVATE KEY") {
            RsaKeyPair::from_pkcs8(&der)
        } else {
            return Err(KeyError::NotPem);
        };
        pair.map(AppKey)
            .map_err(|rejected| KeyError::Rejected(rejected.to_string()))
    }

    /// The App's JWT at `now` (seconds since the epoch).
    pub fn jwt(&self, app_id: u64, now: i64) -> Result<String, KeyError> {
        let header = base64url(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims =
            serde_json::json!({"iat": now - 60, "exp": now + 9 * 60, "iss": app_id.to_string()});
        let claims = base64url(claims.to_string().as_bytes());
        let signed = format!("{header}.{claims}");
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .map_err(|_| KeyError::Signing)?;
        Ok(format!("{signed}.{}", base64url(&signature)))
    }

    /// The public key, DER-encoded (`RSAPublicKey`), as a verifier takes it.
    pub fn public_key(&self) -> &[u8] {
        self.0.public().as_ref()
    }
}

/// Base64url without padding, as JWTs use it.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    const PKCS1: &str = include_str!("../../tests/fixtures/github-app/app-key.pem");
    const PKCS8: &str = include_str!("../../tests/fixtures/github-app/app-key-pkcs8.pem");

    fn base64url_decode(text: &str) -> Vec<u8> {
        let standard: String = text
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        crate::render::flux::decode_base64_bytes(&standard).unwrap()
    }

    #[test]
    fn base64url_has_no_padding_and_its_own_alphabet() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn the_jwt_is_rs256_with_the_claims_github_asks_for_and_verifies_with_the_public_key() {
        for pem in [PKCS1, PKCS8] {
            let key = AppKey::from_pem(pem).unwrap();
            let jwt = key.jwt(123456, 1_700_000_000).unwrap();
            let parts: Vec<&str> = jwt.split('.').collect();
            assert_eq!(parts.len(), 3, "{jwt}");
            let header: serde_json::Value =
                serde_json::from_slice(&base64url_decode(parts[0])).unwrap();
            assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT"}));
            let claims: serde_json::Value =
                serde_json::from_slice(&base64url_decode(parts[1])).unwrap();
            assert_eq!(
                claims,
                serde_json::json!({"iat": 1_699_999_940, "exp": 1_700_000_540, "iss": "123456"})
            );
            let verifier = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key());
            let signed = format!("{}.{}", parts[0], parts[1]);
            verifier
                .verify(signed.as_bytes(), &base64url_decode(parts[2]))
                .expect("the signature verifies");
            let mut forged = signed.clone();
            forged.push('x');
            assert!(
                verifier
                    .verify(forged.as_bytes(), &base64url_decode(parts[2]))
                    .is_err()
            );
        }
    }

    #[test]
    fn a_key_that_is_not_one_is_a_clear_error_that_quotes_nothing_of_it() {
        let error = AppKey::from_pem("ghp_not_a_key").unwrap_err();
        assert!(
            error.to_string().contains("is not a PEM private key"),
            "{error}"
        );
        let broken = "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0IG1hdGVyaWFs\n-----END RSA PRIVATE KEY-----\n";
        let error = AppKey::from_pem(broken).unwrap_err().to_string();
        assert!(error.contains("not a usable RSA key"), "{error}");
        assert!(!error.contains("c2VjcmV0"), "{error}");
        assert_eq!(
            format!("{:?}", AppKey::from_pem(PKCS1).unwrap()),
            "AppKey(***)"
        );
    }
}
