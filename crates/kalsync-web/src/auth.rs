//! Who is asking: password hashing (argon2id), sign-in with a rate limit, sessions in
//! `HttpOnly` `SameSite=Strict` cookies (only a hash of the id is stored), the CSRF
//! token every state-changing request of a session must carry, company API tokens, and
//! the [`Principal`] extractor every handler starts from.

mod limit;
mod password;
mod peer;
mod principal;
mod secrets;
mod session;
mod streams;

pub use limit::SignInLimit;
pub use password::{check_password, hash_password, sign_in, verify_password};
pub use peer::{PeerIp, client_address};
pub use principal::{Principal, Via, authenticate};
pub use secrets::{TOKEN_PREFIX, random_secret, secret_hash};
pub use session::{CSRF_HEADER, SESSION_COOKIE, SESSION_LIFETIME, ended_cookie, start_session};
pub use streams::{OpenStream, STREAMS_PER_PERSON, Streams};
