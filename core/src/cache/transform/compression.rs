//! The zstd compression transformer (feature `zstd`).

use std::io::Read;

use super::Transform;
use crate::cache::envelope::TransformId;
use crate::cache::error::CacheError;

/// The reference's zstd level.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// The reference's cap on decompressed size: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 << 20;

/// zstd compression, with a cap on the decompressed size.
///
/// Frames carry zstd's checksum, so a corrupted frame is an error rather than wrong bytes.
/// Decompression streams into a buffer that stops at the cap, whatever size the frame header
/// declares, and refuses windows larger than the cap needs, so a small hostile frame cannot
/// make a reader allocate more than about twice the cap. Compressing a value larger than the cap
/// is refused, since it could never be read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zstd {
    level: i32,
    max_decompressed: usize,
}

impl Zstd {
    /// zstd at this level (zstd clamps it to its range: 1 to 22, negative for faster modes, 0
    /// for zstd's default), with the default 64 MiB cap.
    #[must_use]
    pub const fn new(level: i32) -> Self {
        Self { level, max_decompressed: DEFAULT_MAX_DECOMPRESSED }
    }

    /// The same, with this cap on the decompressed size in bytes.
    #[must_use]
    pub const fn with_max_decompressed(self, bytes: usize) -> Self {
        Self { max_decompressed: bytes, ..self }
    }

    /// The compression level.
    #[must_use]
    pub const fn level(&self) -> i32 {
        self.level
    }

    /// The cap on decompressed size, in bytes.
    #[must_use]
    pub const fn max_decompressed(&self) -> usize {
        self.max_decompressed
    }

    fn error(reason: impl Into<String>) -> CacheError {
        CacheError::Transform { name: "zstd", reason: reason.into() }
    }

    /// The largest window a frame of at most `max_decompressed` bytes needs (log2), within
    /// zstd's bounds: 2^10 to 2^27 (zstd's own default limit).
    fn window_log_max(&self) -> u32 {
        let needed = self.max_decompressed.checked_next_power_of_two().map_or(27, usize::trailing_zeros);
        needed.clamp(10, 27)
    }
}

impl Default for Zstd {
    fn default() -> Self {
        Self::new(DEFAULT_ZSTD_LEVEL)
    }
}

impl Transform for Zstd {
    fn id(&self) -> TransformId {
        TransformId::Zstd
    }

    fn name(&self) -> &'static str {
        "zstd"
    }

    fn apply(&self, data: &[u8], _random: &mut dyn FnMut(&mut [u8])) -> Result<Vec<u8>, CacheError> {
        if data.len() > self.max_decompressed {
            return Err(Self::error(format!(
                "a value of {} bytes is over the decompression cap of {} bytes and could never be read back",
                data.len(),
                self.max_decompressed
            )));
        }
        let fail = |e: std::io::Error| Self::error(format!("compression failed: {e}"));
        let mut compressor = zstd::bulk::Compressor::new(self.level).map_err(fail)?;
        compressor.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true)).map_err(fail)?;
        compressor.compress(data).map_err(fail)
    }

    fn reverse(&self, data: &[u8]) -> Result<Vec<u8>, CacheError> {
        if data.is_empty() {
            return Err(Self::error("corrupt frame: no data"));
        }
        let corrupt = |e: std::io::Error| Self::error(format!("corrupt frame: {e}"));
        let mut decoder = zstd::stream::read::Decoder::with_buffer(data).map_err(corrupt)?;
        decoder.window_log_max(self.window_log_max()).map_err(corrupt)?;
        let limit = self.max_decompressed;
        // The declared size only sizes the first allocation (never above the cap); the read
        // below stops at the cap whatever the frame says.
        let declared = zstd::zstd_safe::get_frame_content_size(data).ok().flatten();
        let hint =
            declared.and_then(|n| usize::try_from(n).ok()).unwrap_or_else(|| data.len().saturating_mul(4));
        let mut out = Vec::with_capacity(hint.min(limit));
        let read_limit = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        decoder.take(read_limit).read_to_end(&mut out).map_err(corrupt)?;
        if out.len() > limit {
            return Err(Self::error(format!("decompressed value exceeds the cap of {limit} bytes")));
        }
        Ok(out)
    }
}
