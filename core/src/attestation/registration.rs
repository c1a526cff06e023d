//! Proof of possession at registration: the node signs a domain-separated statement
//! ([`debcover_formats::intoto::registration_statement`]: the SHA-256 of the bearer token it
//! registers with, its public key and the time) with the key it declares. The coordinator
//! refuses the registration unless the signature verifies and the time is within
//! [`MAX_CLOCK_SKEW_SECS`] of its clock.
//!
//! A signed timestamp rather than a server challenge: registration stays one call (nodes
//! already retry it while the coordinator is away), and no coordinator keeps challenge state,
//! which matters when several share one database. A replayed proof is bound to the same
//! credential and the same key, within minutes: it can only re-register the key its holder
//! already proved, and needs the node's token besides.

use debcover_formats::intoto;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

/// How far the statement's time may be from the coordinator's clock, either way.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Check a registration's proof. `token_sha256` is the hex SHA-256 of the call's bearer token;
/// returns the 32 key bytes. Every error names the field at fault.
pub fn check(token_sha256: &str, public_key: &str, time: i64, signature: &[u8], now: i64) -> Result<[u8; 32], String> {
    let key = intoto::openssh_ed25519(public_key)
        .ok_or("public_key: not an ssh-ed25519 public key (`ssh-ed25519 BASE64 [comment]`)")?;
    if signature.is_empty() {
        return Err(format!(
            "registration_signature: missing; sign the {} statement with the node key to prove you hold it",
            intoto::REGISTER_DOMAIN
        ));
    }
    if (now - time).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(format!(
            "registration_time: {time} is more than {MAX_CLOCK_SKEW_SECS} s from the coordinator's clock ({now}); check the node's clock"
        ));
    }
    let verifying = VerifyingKey::from_bytes(&key).map_err(|e| format!("public_key: not a valid ed25519 key: {e}"))?;
    let sig = Signature::from_slice(signature).map_err(|_| "registration_signature: not a 64-byte ed25519 signature")?;
    let statement = intoto::registration_statement(token_sha256, &hex::encode(key), time);
    verifying.verify(&statement, &sig).map_err(|_| {
        format!(
            "registration_signature: does not verify with public_key over the {} statement for this credential and time",
            intoto::REGISTER_DOMAIN
        )
    })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn only_a_fresh_signature_by_the_declared_key_for_this_credential_passes() {
        let sk = SigningKey::from_bytes(&[4; 32]);
        let public = sk.verifying_key().to_bytes();
        let ssh = intoto::openssh_public(&public, "n");
        let token = "aa".repeat(32);
        let sign = |token: &str, t: i64| sk.sign(&intoto::registration_statement(token, &hex::encode(public), t)).to_bytes();
        assert_eq!(check(&token, &ssh, 1000, &sign(&token, 1000), 1100), Ok(public));
        assert!(check(&token, &ssh, 1000, &[], 1000).unwrap_err().starts_with("registration_signature: missing"));
        let e = check(&token, &ssh, 1000, &sign(&token, 1000), 2000).unwrap_err();
        assert!(e.starts_with("registration_time:"), "{e}");
        let e = check(&"bb".repeat(32), &ssh, 1000, &sign(&token, 1000), 1000).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        let other = intoto::openssh_public(&SigningKey::from_bytes(&[5; 32]).verifying_key().to_bytes(), "x");
        assert!(check(&token, &other, 1000, &sign(&token, 1000), 1000).unwrap_err().contains("does not verify"));
        assert!(check(&token, "ssh-rsa AAAA", 1000, &sign(&token, 1000), 1000).unwrap_err().starts_with("public_key:"));
    }
}
