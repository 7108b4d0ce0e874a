//! Safe wrapper over the parts of OpenSSL's PKCS#7/CMS C API that
//! rust-openssl does not expose: SCEP signed attributes (RFC 8894 §3.2.1),
//! the signer's digest algorithm, SignedData with custom signed attributes,
//! degenerate certs-only/CRL-only SignedData (RFC 8894 §3.4) and RSA-OAEP
//! key transport for EnvelopedData (RFC 8017 / RFC 3560).
//!
//! This is the only file of the crate allowed to use `unsafe`. Every pointer
//! it receives from OpenSSL is either borrowed from an object it owns for the
//! duration of a `&self` call or wrapped in [`Owned`], which frees it exactly
//! once. Certificates and keys cross the boundary as DER because rust-openssl
//! does not export its raw pointers without the `foreign-types` crate.

use std::ffi::{c_char, c_int, c_long, c_uint, c_void};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;

use foreign_types_shared::{ForeignType, ForeignTypeRef};
use openssl::asn1::Asn1Object;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKeyRef, Private};
use openssl::symm::Cipher;
use openssl::x509::X509Ref;
use openssl_sys as ffi;

use super::WireError;

/// Opaque `CMS_RecipientInfo`, not declared by openssl-sys.
#[allow(non_camel_case_types)]
enum CMS_RecipientInfo {}

/// `PKCS7_ctrl` command that marks a SignedData detached and frees its
/// (empty) eContent, from `<openssl/pkcs7.h>`.
const PKCS7_OP_SET_DETACHED_SIGNATURE: c_int = 1;

// Symbols present in libcrypto 3.0 but not declared by openssl-sys.
extern "C" {
    fn PKCS7_ctrl(p7: *mut ffi::PKCS7, cmd: c_int, larg: c_long, parg: *mut c_char) -> c_long;
    fn PKCS7_add_crl(p7: *mut ffi::PKCS7, crl: *mut ffi::X509_CRL) -> c_int;
    fn CMS_add1_recipient_cert(
        cms: *mut ffi::CMS_ContentInfo,
        recip: *mut ffi::X509,
        flags: c_uint,
    ) -> *mut CMS_RecipientInfo;
    fn CMS_RecipientInfo_get0_pkey_ctx(ri: *mut CMS_RecipientInfo) -> *mut ffi::EVP_PKEY_CTX;
    fn CMS_final(
        cms: *mut ffi::CMS_ContentInfo,
        data: *mut ffi::BIO,
        dcont: *mut ffi::BIO,
        flags: c_uint,
    ) -> c_int;
}

/// The NIDs of the SCEP attributes (RFC 8894 §3.2.1), registered once.
#[derive(Debug, Clone, Copy)]
pub struct ScepNids {
    pub message_type: Nid,
    pub pki_status: Nid,
    pub fail_info: Nid,
    pub sender_nonce: Nid,
    pub recipient_nonce: Nid,
    pub transaction_id: Nid,
}

/// Registers (or looks up) the SCEP attribute OIDs in OpenSSL's object table.
pub fn scep_nids() -> Result<&'static ScepNids, WireError> {
    static NIDS: OnceLock<Option<ScepNids>> = OnceLock::new();
    NIDS.get_or_init(|| {
        let get = |arc: u32, name: &str| -> Option<Nid> {
            let oid = format!("2.16.840.1.113733.1.9.{arc}");
            // Reuse an existing registration so another OBJ_create elsewhere
            // in the process cannot make ours fail with "OID exists".
            let existing = Asn1Object::from_str(&oid).ok()?.nid();
            if existing != Nid::UNDEF {
                return Some(existing);
            }
            Nid::create(&oid, &format!("scep-{name}"), &format!("SCEP {name}")).ok()
        };
        Some(ScepNids {
            message_type: get(2, "messageType")?,
            pki_status: get(3, "pkiStatus")?,
            fail_info: get(4, "failInfo")?,
            sender_nonce: get(5, "senderNonce")?,
            recipient_nonce: get(6, "recipientNonce")?,
            transaction_id: get(7, "transactionID")?,
        })
    })
    .as_ref()
    .ok_or_else(|| WireError::Malformed("cannot register SCEP attribute OIDs".into()))
}

/// ASN.1 type of a signed attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    PrintableString,
    OctetString,
    Utf8String,
    Ia5String,
    /// Any other universal type (its bytes are not read).
    Other(i32),
}

impl AttrKind {
    fn from_raw(t: c_int) -> Self {
        match t {
            ffi::V_ASN1_PRINTABLESTRING => Self::PrintableString,
            ffi::V_ASN1_OCTET_STRING => Self::OctetString,
            ffi::V_ASN1_UTF8STRING => Self::Utf8String,
            ffi::V_ASN1_IA5STRING => Self::Ia5String,
            other => Self::Other(other),
        }
    }

    pub(crate) fn raw(self) -> c_int {
        match self {
            Self::PrintableString => ffi::V_ASN1_PRINTABLESTRING,
            Self::OctetString => ffi::V_ASN1_OCTET_STRING,
            Self::Utf8String => ffi::V_ASN1_UTF8STRING,
            Self::Ia5String => ffi::V_ASN1_IA5STRING,
            Self::Other(t) => t,
        }
    }

    /// Types whose `ASN1_TYPE` value is an `ASN1_STRING` we may read.
    fn is_string(self) -> bool {
        !matches!(self, Self::Other(_))
    }
}

/// A signed attribute to add when signing.
#[derive(Debug, Clone, Copy)]
pub struct AttrSpec<'a> {
    pub nid: Nid,
    pub kind: AttrKind,
    pub value: &'a [u8],
}

/// An OpenSSL object freed exactly once by its free function on drop.
struct Owned<T> {
    ptr: NonNull<T>,
    free: unsafe extern "C" fn(*mut T),
}

impl<T> Owned<T> {
    /// Takes ownership of `ptr`, turning NULL into the pending OpenSSL error.
    fn new(ptr: *mut T, free: unsafe extern "C" fn(*mut T)) -> Result<Self, ErrorStack> {
        NonNull::new(ptr)
            .map(|ptr| Self { ptr, free })
            .ok_or_else(ErrorStack::get)
    }

    fn as_ptr(&self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from OpenSSL with ownership transferred to us,
        // `free` is its matching destructor, and Drop runs once.
        unsafe { (self.free)(self.ptr.as_ptr()) }
    }
}

fn cvt(r: c_int) -> Result<c_int, ErrorStack> {
    if r <= 0 {
        Err(ErrorStack::get())
    } else {
        Ok(r)
    }
}

fn c_len(len: usize) -> Result<c_int, WireError> {
    c_int::try_from(len).map_err(|_| WireError::Malformed("input too large".into()))
}

fn x509_from_der(der: &[u8]) -> Result<Owned<ffi::X509>, WireError> {
    let mut p = der.as_ptr();
    // SAFETY: `p` points at `der.len()` readable bytes; d2i only reads them
    // and returns a new X509 (or NULL) that we own.
    let x = unsafe { ffi::d2i_X509(ptr::null_mut(), &mut p, c_long::from(c_len(der.len())?)) };
    Ok(Owned::new(x, ffi::X509_free)?)
}

fn crl_from_der(der: &[u8]) -> Result<Owned<ffi::X509_CRL>, WireError> {
    let mut p = der.as_ptr();
    // SAFETY: as for `x509_from_der`; the result is a new X509_CRL we own.
    let c = unsafe { ffi::d2i_X509_CRL(ptr::null_mut(), &mut p, c_long::from(c_len(der.len())?)) };
    Ok(Owned::new(c, ffi::X509_CRL_free)?)
}

/// Two-pass i2d into a Rust buffer, so no OPENSSL_free is needed.
fn i2d_to_vec<T>(
    obj: *const T,
    i2d: unsafe extern "C" fn(*const T, *mut *mut u8) -> c_int,
) -> Result<Vec<u8>, WireError> {
    // SAFETY: `obj` is a live object owned by the caller; a NULL output
    // pointer asks only for the length.
    let len = unsafe { i2d(obj, ptr::null_mut()) };
    let len = usize::try_from(cvt(len)?).map_err(|_| WireError::Malformed("i2d".into()))?;
    let mut buf = vec![0u8; len];
    let mut out = buf.as_mut_ptr();
    // SAFETY: `buf` has exactly the `len` bytes i2d reported it will write.
    let written = unsafe { i2d(obj, &mut out) };
    if usize::try_from(written).ok() != Some(len) {
        return Err(ErrorStack::get().into());
    }
    Ok(buf)
}

/// Reads the `value` bytes of an `ASN1_STRING`.
///
/// # Safety
/// `s` must be NULL or a live `ASN1_STRING` that outlives the call.
unsafe fn asn1_string_bytes(s: *const ffi::ASN1_STRING) -> Vec<u8> {
    if s.is_null() {
        return Vec::new();
    }
    // SAFETY: `s` is live (caller contract); data/length describe its buffer.
    unsafe {
        let data = ffi::ASN1_STRING_get0_data(s);
        let len = usize::try_from(ffi::ASN1_STRING_length(s)).unwrap_or(0);
        if data.is_null() || len == 0 {
            return Vec::new();
        }
        std::slice::from_raw_parts(data, len).to_vec()
    }
}

/// A parsed PKCS#7 SignedData (DER or BER), owned.
pub struct SignedData {
    p7: Owned<ffi::PKCS7>,
}

impl SignedData {
    /// Parses a ContentInfo that must hold a SignedData.
    pub fn from_der(der: &[u8]) -> Result<Self, WireError> {
        let mut p = der.as_ptr();
        // SAFETY: `p` points at `der.len()` readable bytes; d2i_PKCS7 accepts
        // BER and returns a new PKCS7 that we own (or NULL).
        let raw =
            unsafe { ffi::d2i_PKCS7(ptr::null_mut(), &mut p, c_long::from(c_len(der.len())?)) };
        let p7 = Owned::new(raw, ffi::PKCS7_free)
            .map_err(|e| WireError::Malformed(format!("not a PKCS#7 ContentInfo: {e}")))?;
        // SAFETY: p7 is live; `type_` is set by d2i for every ContentInfo and
        // `d.sign` is the active union member exactly when the type is signed.
        let ok = unsafe {
            ffi::OBJ_obj2nid((*p7.as_ptr()).type_) == ffi::NID_pkcs7_signed
                && !(*p7.as_ptr()).d.sign.is_null()
        };
        if !ok {
            return Err(WireError::Malformed("ContentInfo is not SignedData".into()));
        }
        Ok(Self { p7 })
    }

    /// Hands the parsed structure to rust-openssl's safe `Pkcs7` (for
    /// signature checks), so a request is parsed once, not twice.
    pub fn into_pkcs7(self) -> openssl::pkcs7::Pkcs7 {
        let raw = self.p7.as_ptr();
        std::mem::forget(self.p7);
        // SAFETY: `raw` is a live PKCS7 we owned; forgetting our `Owned`
        // transfers that ownership (and the one PKCS7_free) to `Pkcs7`.
        unsafe { openssl::pkcs7::Pkcs7::from_ptr(raw) }
    }

    fn signed(&self) -> *mut ffi::PKCS7_SIGNED {
        // SAFETY: `from_der` checked the type is signed and `d.sign` non-NULL.
        unsafe { (*self.p7.as_ptr()).d.sign }
    }

    /// Number of SignerInfos.
    pub fn signer_count(&self) -> usize {
        // SAFETY: p7 is a live SignedData; the stack is borrowed from it.
        let n = unsafe {
            let sk = ffi::PKCS7_get_signer_info(self.p7.as_ptr());
            if sk.is_null() {
                0
            } else {
                ffi::OPENSSL_sk_num(sk.cast())
            }
        };
        usize::try_from(n).unwrap_or(0)
    }

    fn first_signer(&self) -> Option<*mut ffi::PKCS7_SIGNER_INFO> {
        if self.signer_count() == 0 {
            return None;
        }
        // SAFETY: there is at least one element; it stays owned by p7.
        let si = unsafe {
            ffi::OPENSSL_sk_value(ffi::PKCS7_get_signer_info(self.p7.as_ptr()).cast(), 0)
        };
        (!si.is_null()).then_some(si.cast())
    }

    /// The first value of a signed attribute of the first signer.
    pub fn signed_attribute(&self, nid: Nid) -> Option<(AttrKind, Vec<u8>)> {
        let si = self.first_signer()?;
        // SAFETY: `si` is borrowed from p7; the returned ASN1_TYPE is borrowed
        // from the signer info and read before `&self` ends.
        unsafe {
            let t = ffi::PKCS7_get_signed_attribute(si, nid.as_raw());
            if t.is_null() {
                return None;
            }
            let kind = AttrKind::from_raw((*t).type_);
            if !kind.is_string() {
                return Some((kind, Vec::new()));
            }
            // The string kinds all store an ASN1_STRING in the union.
            Some((kind, asn1_string_bytes((*t).value.asn1_string)))
        }
    }

    /// NID of the first signer's digest algorithm.
    pub fn digest_nid(&self) -> Option<Nid> {
        let si = self.first_signer()?;
        let mut alg: *mut ffi::X509_ALGOR = ptr::null_mut();
        let mut obj: *const ffi::ASN1_OBJECT = ptr::null();
        // SAFETY: `si` is live; get0 functions only store borrowed pointers
        // into our out-parameters, and unused out-parameters may be NULL.
        unsafe {
            ffi::PKCS7_SIGNER_INFO_get0_algs(si, ptr::null_mut(), &mut alg, ptr::null_mut());
            if alg.is_null() {
                return None;
            }
            ffi::X509_ALGOR_get0(&mut obj, ptr::null_mut(), ptr::null_mut(), alg);
            if obj.is_null() {
                return None;
            }
            Some(Nid::from_raw(ffi::OBJ_obj2nid(obj)))
        }
    }

    /// The encapsulated content bytes when its type is id-data and present.
    pub fn content(&self) -> Option<Vec<u8>> {
        // SAFETY: `signed()` is live; `contents` is a PKCS7 owned by it whose
        // `d.data` is the active member when its type is id-data.
        unsafe {
            let inner = (*self.signed()).contents;
            if inner.is_null() || ffi::OBJ_obj2nid((*inner).type_) != ffi::NID_pkcs7_data {
                return None;
            }
            let os = (*inner).d.data;
            (!os.is_null()).then(|| asn1_string_bytes(os.cast_const().cast()))
        }
    }

    /// DER of every certificate in `certificates`.
    pub fn certificates_der(&self) -> Result<Vec<Vec<u8>>, WireError> {
        // SAFETY: the stack and its elements are borrowed from p7.
        let sk = unsafe { (*self.signed()).cert };
        let mut out = Vec::new();
        for i in 0..stack_len(sk.cast()) {
            // SAFETY: index is in bounds; element is a live X509.
            let x = unsafe { ffi::OPENSSL_sk_value(sk.cast(), i) }.cast::<ffi::X509>();
            out.push(i2d_to_vec(x.cast_const(), ffi::i2d_X509)?);
        }
        Ok(out)
    }

    /// DER of every CRL in `crls`.
    pub fn crls_der(&self) -> Result<Vec<Vec<u8>>, WireError> {
        // SAFETY: the stack and its elements are borrowed from p7.
        let sk = unsafe { (*self.signed()).crl };
        let mut out = Vec::new();
        for i in 0..stack_len(sk.cast()) {
            // SAFETY: index is in bounds; element is a live X509_CRL.
            let c = unsafe { ffi::OPENSSL_sk_value(sk.cast(), i) }.cast::<ffi::X509_CRL>();
            out.push(i2d_to_vec(c.cast_const(), ffi::i2d_X509_CRL)?);
        }
        Ok(out)
    }
}

fn stack_len(sk: *const ffi::OPENSSL_STACK) -> c_int {
    if sk.is_null() {
        return 0;
    }
    // SAFETY: non-NULL stack borrowed from a live PKCS7.
    unsafe { ffi::OPENSSL_sk_num(sk) }.max(0)
}

/// A stack of X509_ATTRIBUTEs that frees its elements on drop.
struct AttrStack(Owned<ffi::OPENSSL_STACK>);

impl AttrStack {
    fn new() -> Result<Self, ErrorStack> {
        // SAFETY: allocates an empty stack that we own; freed in Drop below.
        let sk = unsafe { ffi::OPENSSL_sk_new_null() };
        Ok(Self(Owned::new(sk, ffi::OPENSSL_sk_free)?))
    }

    /// Creates an attribute that copies `value` and pushes it.
    fn push(
        &mut self,
        nid: c_int,
        kind: c_int,
        value: *const c_void,
        len: c_int,
    ) -> Result<(), ErrorStack> {
        // SAFETY: with a NULL first argument create_by_NID allocates a new
        // attribute and copies `value` (len bytes, or an ASN1_OBJECT when
        // len is -1), so we own the attribute and nothing else.
        let attr =
            unsafe { ffi::X509_ATTRIBUTE_create_by_NID(ptr::null_mut(), nid, kind, value, len) };
        let attr = Owned::new(attr, ffi::X509_ATTRIBUTE_free)?;
        // SAFETY: push takes ownership only on success.
        cvt(unsafe { ffi::OPENSSL_sk_push(self.0.as_ptr(), attr.as_ptr().cast()) })?;
        std::mem::forget(attr);
        Ok(())
    }
}

impl Drop for AttrStack {
    fn drop(&mut self) {
        // SAFETY: every element was pushed by `push` and is owned by the
        // stack; pop each and free it, then Owned frees the stack itself.
        unsafe {
            loop {
                let a = ffi::OPENSSL_sk_pop(self.0.as_ptr());
                if a.is_null() {
                    break;
                }
                ffi::X509_ATTRIBUTE_free(a.cast());
            }
        }
    }
}

/// Builds a SignedData over id-data `content`, signed by the key in
/// `signer_key_der` with `md`, carrying `attrs` plus contentType (and the
/// signingTime/messageDigest OpenSSL adds). `signer_cert_der` and
/// `extra_certs_der` go into `certificates`. Returns DER.
pub fn sign_with_attributes(
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    md: MessageDigest,
    extra: &[&X509Ref],
    attrs: &[AttrSpec<'_>],
    content: &[u8],
) -> Result<Vec<u8>, WireError> {
    let mut stack = AttrStack::new()?;
    // SAFETY: OBJ_nid2obj returns a static object; len -1 makes the
    // attribute copy it.
    let data_oid = unsafe { ffi::OBJ_nid2obj(ffi::NID_pkcs7_data) };
    stack.push(
        ffi::NID_pkcs9_contentType,
        ffi::V_ASN1_OBJECT,
        data_oid.cast_const().cast(),
        -1,
    )?;
    for a in attrs {
        stack.push(
            a.nid.as_raw(),
            a.kind.raw(),
            a.value.as_ptr().cast(),
            c_len(a.value.len())?,
        )?;
    }
    // SAFETY: PKCS7_new returns a new object that we own.
    let p7 = Owned::new(unsafe { ffi::PKCS7_new() }, ffi::PKCS7_free)?;
    // SAFETY: p7 is ours; cert, key and extra are borrowed live objects and
    // add_signature / add_certificate take their own references to them; the signer
    // info it returns is owned by p7; set_signed_attributes deep-copies the
    // stack. The BIO chain from dataInit is ours and is freed by its guard.
    unsafe {
        cvt(ffi::PKCS7_set_type(p7.as_ptr(), ffi::NID_pkcs7_signed))?;
        let si = ffi::PKCS7_add_signature(p7.as_ptr(), cert.as_ptr(), key.as_ptr(), md.as_ptr());
        if si.is_null() {
            return Err(ErrorStack::get().into());
        }
        cvt(ffi::PKCS7_set_signed_attributes(
            si,
            stack.0.as_ptr().cast(),
        ))?;
        cvt(ffi::PKCS7_add_certificate(p7.as_ptr(), cert.as_ptr()))?;
        for x in extra {
            cvt(ffi::PKCS7_add_certificate(p7.as_ptr(), x.as_ptr()))?;
        }
        cvt(ffi::PKCS7_content_new(p7.as_ptr(), ffi::NID_pkcs7_data))?;
        let bio = Owned::new(
            ffi::PKCS7_dataInit(p7.as_ptr(), ptr::null_mut()),
            ffi::BIO_free_all,
        )?;
        if !content.is_empty() {
            let n = ffi::BIO_write(bio.as_ptr(), content.as_ptr().cast(), c_len(content.len())?);
            if usize::try_from(n).ok() != Some(content.len()) {
                return Err(ErrorStack::get().into());
            }
        }
        ffi::BIO_ctrl(bio.as_ptr(), ffi::BIO_CTRL_FLUSH, 0, ptr::null_mut());
        cvt(ffi::PKCS7_dataFinal(p7.as_ptr(), bio.as_ptr()))?;
    }
    i2d_to_vec(p7.as_ptr().cast_const(), ffi::i2d_PKCS7)
}

/// Builds a degenerate SignedData: no signers, id-data without eContent,
/// carrying `certs` and `crls_der` (RFC 8894 §3.4). Returns DER.
pub fn degenerate(certs: &[&X509Ref], crls_der: &[&[u8]]) -> Result<Vec<u8>, WireError> {
    let crls = crls_der
        .iter()
        .map(|d| crl_from_der(d))
        .collect::<Result<Vec<_>, _>>()?;
    // SAFETY: PKCS7_new returns a new object that we own.
    let p7 = Owned::new(unsafe { ffi::PKCS7_new() }, ffi::PKCS7_free)?;
    // SAFETY: p7 and every CRL are ours, the certs are borrowed live
    // objects; the add functions take their own references. SET_DETACHED frees the empty
    // id-data OCTET STRING inside p7 and leaves a NULL in its place.
    unsafe {
        cvt(ffi::PKCS7_set_type(p7.as_ptr(), ffi::NID_pkcs7_signed))?;
        cvt(ffi::PKCS7_content_new(p7.as_ptr(), ffi::NID_pkcs7_data))?;
        if PKCS7_ctrl(
            p7.as_ptr(),
            PKCS7_OP_SET_DETACHED_SIGNATURE,
            1,
            ptr::null_mut(),
        ) <= 0
        {
            return Err(ErrorStack::get().into());
        }
        for x in certs {
            cvt(ffi::PKCS7_add_certificate(p7.as_ptr(), x.as_ptr()))?;
        }
        for c in &crls {
            cvt(PKCS7_add_crl(p7.as_ptr(), c.as_ptr()))?;
        }
    }
    i2d_to_vec(p7.as_ptr().cast_const(), ffi::i2d_PKCS7)
}

/// Envelopes `content` to `recipient_der` with `cipher`, transporting the
/// content key with RSAES-OAEP (default SHA-1 parameters). Returns CMS DER.
pub fn envelope_oaep(
    recipient_der: &[u8],
    content: &[u8],
    cipher: Cipher,
) -> Result<Vec<u8>, WireError> {
    let recip = x509_from_der(recipient_der)?;
    let flags = ffi::CMS_BINARY;
    // SAFETY: a NULL cert stack and data BIO with CMS_PARTIAL yield an empty
    // EnvelopedData that we own; `cipher` is a static EVP_CIPHER.
    let cms = Owned::new(
        unsafe {
            ffi::CMS_encrypt(
                ptr::null_mut(),
                ptr::null_mut(),
                cipher.as_ptr(),
                flags | ffi::CMS_PARTIAL,
            )
        },
        ffi::CMS_ContentInfo_free,
    )?;
    let data_len = c_len(content.len())?;
    // SAFETY: cms and recip are live and owned by us; add1 takes its own
    // reference to recip; the RecipientInfo and its EVP_PKEY_CTX are owned
    // by cms. The read-only mem BIO borrows `content` only until freed at
    // the end of this block.
    unsafe {
        let ri = CMS_add1_recipient_cert(cms.as_ptr(), recip.as_ptr(), flags | ffi::CMS_KEY_PARAM);
        if ri.is_null() {
            return Err(ErrorStack::get().into());
        }
        let pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
        if pctx.is_null() {
            return Err(ErrorStack::get().into());
        }
        cvt(ffi::EVP_PKEY_CTX_set_rsa_padding(
            pctx,
            ffi::RSA_PKCS1_OAEP_PADDING,
        ))?;
        let data = Owned::new(
            ffi::BIO_new_mem_buf(content.as_ptr().cast(), data_len),
            ffi::BIO_free_all,
        )?;
        cvt(CMS_final(
            cms.as_ptr(),
            data.as_ptr(),
            ptr::null_mut(),
            flags,
        ))?;
    }
    i2d_to_vec(cms.as_ptr().cast_const(), ffi::i2d_CMS_ContentInfo)
}

#[cfg(test)]
#[path = "pkcs7_ffi_tests.rs"]
mod tests;
