//! Test certificates, made at test time with rcgen: a CA and a leaf for
//! `localhost` / 127.0.0.1 / ::1, all ECDSA P-256, written as PEM files to
//! a fresh temporary directory (removed on drop).

use std::path::PathBuf;

/// A CA, a leaf it signed, and the leaf's key, as PEM files.
pub struct TestPki {
    /// The directory holding the files.
    pub dir: PathBuf,
    /// The CA certificate (the trust anchor clients are given).
    pub ca: PathBuf,
    /// The leaf certificate (chain: leaf only).
    pub cert: PathBuf,
    /// The leaf's private key (PKCS#8).
    pub key: PathBuf,
    /// The leaf certificate, DER.
    pub cert_der: Vec<u8>,
    /// The CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// The leaf's key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl TestPki {
    /// Makes a new CA and leaf under a temporary directory named after
    /// `tag` and this process.
    pub fn new(tag: &str) -> TestPki {
        let dir = std::env::temp_dir().join(format!("sockloop-pki-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sockloop test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("::1".parse().unwrap()));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let leaf = params.signed_by(&key, &ca, &ca_key).unwrap();
        let pki = TestPki {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            cert_der: leaf.der().to_vec(),
            ca_der: ca.der().to_vec(),
            key_der: key.serialize_der(),
            dir,
        };
        std::fs::write(&pki.ca, ca.pem()).unwrap();
        std::fs::write(&pki.cert, leaf.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        pki
    }

    /// A path inside the directory (for bad-input files).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `s` of a path, for command lines.
    pub fn arg(p: &std::path::Path) -> &str {
        p.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
