//! Taking up an index written in the layout before keys were indexed
//! (`fedpki-store/2`): in one transaction, at the first start.

use redb::ReadableTable;

use super::{Table, db_err, decode_record, encode_record, key_row};
use crate::store::records::RevocationRecord;

/// Take up a `fedpki-store/2` index: each certificate record rewritten
/// with its key, the key table filled, and every key revoked for
/// compromise marked.
pub(super) fn index_keys(
    certs: &mut Table<'_, &'static str, &'static [u8]>,
    revoked: &Table<'_, &'static str, &'static [u8]>,
    by_key_table: &mut Table<'_, &'static str, ()>,
    compromised: &mut Table<'_, &'static str, &'static str>,
) -> Result<(), String> {
    let mut records = Vec::new();
    for row in certs.iter().map_err(db_err)? {
        let (k, v) = row.map_err(db_err)?;
        records.push(decode_record(k.value(), v.value())?);
    }
    for rec in &records {
        certs
            .insert(rec.serial.as_str(), encode_record(rec).as_slice())
            .map_err(db_err)?;
        if !rec.key.is_empty() {
            by_key_table
                .insert(key_row(&rec.key, &rec.serial).as_str(), ())
                .map_err(db_err)?;
        }
    }
    let keys: std::collections::HashMap<&str, &str> = records
        .iter()
        .map(|r| (r.serial.as_str(), r.key.as_str()))
        .collect();
    for row in revoked.iter().map_err(db_err)? {
        let (_, v) = row.map_err(db_err)?;
        let rec: RevocationRecord = serde_json::from_slice(v.value()).map_err(db_err)?;
        if rec.reason == fedpki_core::crl::Reason::KeyCompromise.code()
            && let Some(key) = keys.get(rec.serial.as_str()).filter(|k| !k.is_empty())
        {
            compromised
                .insert(*key, rec.serial.as_str())
                .map_err(db_err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{CERTS, FORMAT, FORMAT_2, FORMAT_KEY, Index, META, REVOKED};
    use super::*;
    use crate::store::records::CertRecord;
    use crate::store::rules::Lookup;

    /// A ledger written before keys were indexed (format 2, records
    /// without their key) is taken up: each certificate's key is read from
    /// its DER, and a key revoked for compromise is barred.
    #[test]
    fn a_format_2_ledger_is_taken_up_with_its_keys() {
        use fedpki_core::{KeyType, PrivateKey, SigningKey};
        let mut rng = crate::platform::sys::OsEntropy;
        let key = PrivateKey::generate(KeyType::P256, &mut rng).unwrap();
        let at = fedpki_core::UnixTime(1_700_000_000);
        let (ca_key, mut certs) = (
            PrivateKey::generate(KeyType::P256, &mut rng).unwrap(),
            vec![],
        );
        let serial = fedpki_core::issue::Serial::random(&mut rng).unwrap();
        let ca = fedpki_core::issue::root_ca(&ca_key, "ca", serial, at).unwrap();
        let issuer = fedpki_core::issue::Issuer {
            cert: &ca,
            key: &ca_key,
        };
        for n in 0..2 {
            let serial = fedpki_core::issue::Serial::random(&mut rng).unwrap();
            let cert = issuer
                .intermediate_ca(&key.public_key(), &format!("n{n}"), serial, at)
                .unwrap();
            certs.push(CertRecord::of(
                &cert,
                fedpki_core::issue::cert_der(&cert).unwrap(),
                1_700_000_000,
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fedpki.redb");
        let db = crate::store::disk::builder().create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(CERTS).unwrap();
            for rec in &certs {
                // Version 1: neither key nor issuer (two empty texts,
                // each a two-byte length, dropped).
                let mut v1 = encode_record(&CertRecord {
                    key: String::new(),
                    issuer: String::new(),
                    ..rec.clone()
                });
                let lengths = 4;
                let at = v1.len() - rec.der.len() - lengths;
                v1.drain(at..at + lengths);
                v1[0] = 1;
                table.insert(rec.serial.as_str(), v1.as_slice()).unwrap();
            }
            let revoked = RevocationRecord {
                serial: certs[0].serial.clone(),
                revoked_at: 1_700_000_100,
                reason: 1,
            };
            txn.open_table(REVOKED)
                .unwrap()
                .insert(
                    revoked.serial.as_str(),
                    serde_json::to_vec(&revoked).unwrap().as_slice(),
                )
                .unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(FORMAT_KEY, FORMAT_2)
                .unwrap();
        }
        txn.commit().unwrap();
        let index = Index::new(db).unwrap();
        let view = index.view().unwrap();
        assert_eq!(view.format().unwrap().as_deref(), Some(FORMAT));
        let key = key.public_key().pin();
        let serials: Vec<String> = certs.iter().map(|c| c.serial.clone()).collect();
        assert_eq!(
            view.same_key(&key).unwrap().into_iter().collect::<Vec<_>>(),
            {
                let mut s = serials.clone();
                s.sort();
                s
            }
        );
        assert!(view.compromised(&key).unwrap());
        let read = view.certificate(&serials[1]).unwrap().unwrap();
        assert_eq!((&read.key, &read.issuer), (&key, &certs[1].issuer));
        assert_eq!(read.issuer, fedpki_core::encoding::hex(&issuer.key_id()));
    }
}
