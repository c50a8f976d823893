//! Passwords the agent hands to an application, hashed the way the application verifies them:
//! passlib's `pbkdf2_sha512` (what Odoo's `res.users` and `admin_passwd` accept), and random
//! passwords for the agent to generate.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use sha2::Sha512;

/// passlib's default for pbkdf2_sha512 in Odoo 17 (`res_users.py` sets 600,000 rounds).
pub const ROUNDS: u32 = 600_000;

/// `$pbkdf2-sha512$<rounds>$<salt>$<checksum>` with a random 16-byte salt.
pub fn pbkdf2_sha512(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    pbkdf2_sha512_with(password, &salt, ROUNDS)
}

/// The same with a given salt and rounds (tests compare against known vectors).
pub fn pbkdf2_sha512_with(password: &str, salt: &[u8], rounds: u32) -> String {
    let mut sum = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, rounds, &mut sum);
    format!("$pbkdf2-sha512${rounds}${}${}", ab64(salt), ab64(&sum))
}

/// passlib's "adapted base64": standard base64 without padding, `+` written as `.`.
fn ab64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes).replace('+', ".")
}

/// A random password of `len` letters and digits (the agent's generated passwords).
pub fn generate(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python's hashlib.pbkdf2_hmac('sha512', ...) with the salt 0..16, in passlib's encoding.
    #[test]
    fn matches_passlib_encoding_of_a_known_vector() {
        let salt: Vec<u8> = (0..16).collect();
        assert_eq!(
            pbkdf2_sha512_with("correct horse battery", &salt, 1000),
            "$pbkdf2-sha512$1000$AAECAwQFBgcICQoLDA0ODw$ToxFUi5y3fprZRW/V6CupR2uIDYfuy5rlsF9Z4E648lE68lw5lzmucru/HdPvmBJDSLroVh1Q2xCvjqd8NI/6Q"
        );
    }

    #[test]
    fn salts_differ_and_the_text_is_safe_in_sql_and_config_files() {
        let (a, b) = (pbkdf2_sha512("pw"), pbkdf2_sha512("pw"));
        assert_ne!(a, b);
        assert!(a.starts_with("$pbkdf2-sha512$600000$"));
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "$-./".contains(c)));
        assert_eq!(generate(24).len(), 24);
    }
}
