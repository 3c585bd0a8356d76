use super::*;
use crate::KeyType;
use crate::key::tests::TestEntropy;

fn fixture() -> (PrivateKey, Subject, Vec<String>) {
    let key = PrivateKey::generate(KeyType::P256, &mut TestEntropy(7)).unwrap();
    (
        key,
        Subject::new("col1").unwrap(),
        alloc::vec![sign_audience("localhost:9123")],
    )
}

fn vk(key: &PrivateKey) -> crate::PublicKey {
    key.public_key()
}

fn verify(
    jwt: &str,
    provisioner: &crate::PublicKey,
    expect: &Expectations<'_>,
    now: UnixTime,
) -> Result<VerifiedToken, TokenError> {
    verify_with(jwt, provisioner, &crate::RUST_CRYPTO, expect, now)
}

fn token(key: &PrivateKey, subject: &Subject, aud: &str, now: u64, ttl: u64) -> String {
    sign(
        &TokenRequest {
            issuer: "provisioner",
            subject,
            sans: &[],
            audience: aud,
            root_der: b"root",
            now: UnixTime(now),
            ttl_secs: ttl,
            tls_key_sha256: None,
        },
        key,
        &mut TestEntropy(now),
    )
    .unwrap()
}

#[test]
fn a_good_token_verifies_and_carries_its_claims() {
    let (key, subject, auds) = fixture();
    let t = token(&key, &subject, &auds[0], 1000, 300);
    let exp = Expectations {
        issuer: "provisioner",
        audiences: &auds,
        max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
    };
    let v = verify(&t, &vk(&key), &exp, UnixTime(1100)).unwrap();
    assert_eq!(v.subject().as_str(), "col1");
    assert_eq!(v.sans(), [San::Dns("col1".into())]);
    assert_eq!(v.jti().len(), 64);
    assert_eq!(v.claims().sha, hex(&sha256(b"root")));
    let header = String::from_utf8(unb64url(t.split('.').next().unwrap()).unwrap()).unwrap();
    assert!(header.contains(r#""alg":"ES256""#) && header.contains(r#""typ":"JWT""#));
}

#[test]
fn each_check_refuses_with_its_own_reason() {
    let (key, subject, auds) = fixture();
    let exp = Expectations {
        issuer: "provisioner",
        audiences: &auds,
        max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
    };
    let t = token(&key, &subject, &auds[0], 1000, 300);
    let k = vk(&key);
    assert_eq!(
        verify(&t, &k, &exp, UnixTime(1000 + 300 + 61)),
        Err(TokenError::Expired)
    );
    assert!(verify(&t, &k, &exp, UnixTime(1000 + 300 + 60)).is_ok());
    assert_eq!(
        verify(&t, &k, &exp, UnixTime(1000 - 61)),
        Err(TokenError::NotYetValid)
    );
    let other_aud = token(&key, &subject, "https://evil:1/1.0/sign", 1000, 300);
    assert_eq!(
        verify(&other_aud, &k, &exp, UnixTime(1000)),
        Err(TokenError::WrongAudience)
    );
    let exp_iss = Expectations {
        issuer: "other",
        audiences: &auds,
        max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
    };
    assert_eq!(
        verify(&t, &k, &exp_iss, UnixTime(1000)),
        Err(TokenError::WrongIssuer)
    );
    let other = PrivateKey::generate(KeyType::P256, &mut TestEntropy(99)).unwrap();
    assert_eq!(
        verify(&t, &vk(&other), &exp, UnixTime(1000)),
        Err(TokenError::BadSignature)
    );
    // Flip one character of the claims: the signature no longer holds.
    let mut parts: Vec<String> = t.split('.').map(String::from).collect();
    let mut claims: Claims = serde_json::from_slice(&unb64url(&parts[1]).unwrap()).unwrap();
    claims.sub = "col2".into();
    parts[1] = b64url(serde_json::to_string(&claims).unwrap().as_bytes());
    assert_eq!(
        verify(&parts.join("."), &k, &exp, UnixTime(1000)),
        Err(TokenError::BadSignature)
    );
    assert!(matches!(
        verify("a.b", &k, &exp, UnixTime(1000)),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn bundle_round_trip_and_root_check() {
    let (key, subject, auds) = fixture();
    let root = PrivateKey::generate(KeyType::P256, &mut TestEntropy(3)).unwrap();
    let root_cert = crate::issue::root_ca(
        &root,
        "Test Root",
        crate::issue::Serial::random(&mut TestEntropy(4)).unwrap(),
        UnixTime(1_700_000_000),
    )
    .unwrap();
    let root_der = crate::issue::cert_der(&root_cert).unwrap();
    let jwt = sign(
        &TokenRequest {
            issuer: "provisioner",
            subject: &subject,
            sans: &[],
            audience: &auds[0],
            root_der: &root_der,
            now: UnixTime(1_700_000_000),
            ttl_secs: 60,
            tls_key_sha256: None,
        },
        &key,
        &mut TestEntropy(5),
    )
    .unwrap();
    let bundle = Bundle {
        jwt,
        root_pem: crate::issue::cert_pem(&root_cert).unwrap(),
    };
    let encoded = bundle.encode();
    assert_eq!(encoded.matches('.').count(), 1);
    let (back, claims, _) = Bundle::parse(&encoded).unwrap();
    assert_eq!(back, bundle);
    assert_eq!(claims.sub, "col1");
    // Another root in the bundle is caught before anything else.
    let other = crate::issue::root_ca(
        &root,
        "Other Root",
        crate::issue::Serial::random(&mut TestEntropy(6)).unwrap(),
        UnixTime(1_700_000_000),
    )
    .unwrap();
    let forged = Bundle {
        jwt: bundle.jwt.clone(),
        root_pem: crate::issue::cert_pem(&other).unwrap(),
    };
    assert_eq!(
        Bundle::parse(&forged.encode()).unwrap_err(),
        TokenError::RootMismatch
    );
    assert!(Bundle::parse("no-dot-here").is_err());
}
