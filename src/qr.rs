//! QR codes of otpauth:// URIs (feature `qr`): SVG, PNG, `data:` URL and terminal output.
//!
//! Error correction level M (15 % of the code may be damaged: what Google Authenticator's own
//! generator uses) and the 4-module quiet zone the QR standard requires: without it, phone
//! cameras often fail to find the code on a busy page.
//!
//! The image *is* the secret: serve it only to the user who is enrolling, over HTTPS, with
//! `Cache-Control: no-store`, and never log it. The outputs are zeroized on drop.

use core::fmt;

use data_encoding::BASE64;
use qrcode::{Color, EcLevel, QrCode};
use zeroize::Zeroizing;

use crate::error::QrError;
use crate::uri::OtpAuthUri;

/// The quiet zone around the code, in modules (ISO/IEC 18004).
const QUIET_ZONE: usize = 4;
/// Largest PNG/SVG edge accepted, in pixels.
const MAX_IMAGE_PX: usize = 8192;

/// A QR code of an otpauth:// URI, ready to render.
///
/// ```
/// use twofactor::{OtpAuthUri, Qr, Secret};
///
/// let uri = OtpAuthUri::totp_builder(Secret::generate(Default::default()), "alice@example.com")
///     .issuer("Example")
///     .build()?;
/// let qr = Qr::new(&uri)?;
/// let svg = qr.to_svg(); // inline it in the enrolment page
/// assert!(svg.starts_with("<svg"));
/// let data_url = qr.to_data_url()?; // or <img src="...">
/// assert!(data_url.starts_with("data:image/png;base64,"));
/// # Ok::<(), twofactor::Error>(())
/// ```
pub struct Qr {
    modules: Zeroizing<Vec<bool>>,
    width: usize,
    module_px: u32,
}

impl fmt::Debug for Qr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qr")
            .field("width", &self.width)
            .field("module_px", &self.module_px)
            .field("modules", &"[REDACTED]")
            .finish()
    }
}

impl Qr {
    /// Pixels per module in PNG and SVG output unless changed with [`Qr::module_size`]: a typical
    /// 6-digit SHA-1 URI (version 6 to 8, 41 to 49 modules plus the quiet zone) comes out at
    /// roughly 300 to 450 pixels, easy to scan from a laptop screen.
    pub const DEFAULT_MODULE_PX: u32 = 8;

    /// Encodes `uri` at error correction level M.
    ///
    /// # Errors
    /// [`QrError::DataTooLong`] if the URI does not fit in a QR code (about 2.3 KB at level M).
    pub fn new(uri: &OtpAuthUri) -> Result<Self, QrError> {
        Self::from_text(&uri.to_uri())
    }

    /// Encodes arbitrary text (for example a URI built elsewhere) at error correction level M.
    ///
    /// # Errors
    /// [`QrError::DataTooLong`] if the text does not fit in a QR code.
    pub fn from_text(text: &str) -> Result<Self, QrError> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
            .map_err(|_| QrError::DataTooLong)?;
        let width = code.width();
        let modules = Zeroizing::new(
            code.into_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect::<Vec<bool>>(),
        );
        Ok(Self {
            modules,
            width,
            module_px: Self::DEFAULT_MODULE_PX,
        })
    }

    /// Sets the pixels per module for PNG and SVG output.
    ///
    /// # Errors
    /// [`QrError::InvalidModuleSize`] for 0, more than 64, or an image wider than 8192 pixels.
    pub fn module_size(mut self, px: u32) -> Result<Self, QrError> {
        let edge = (self.width + 2 * QUIET_ZONE).saturating_mul(px as usize);
        if px == 0 || px > 64 || edge > MAX_IMAGE_PX {
            return Err(QrError::InvalidModuleSize(px));
        }
        self.module_px = px;
        Ok(self)
    }

    /// Modules per side, without the quiet zone.
    #[must_use]
    pub const fn width(&self) -> usize {
        self.width
    }

    /// Image edge in pixels, quiet zone included.
    #[must_use]
    pub fn image_px(&self) -> usize {
        (self.width + 2 * QUIET_ZONE) * self.module_px as usize
    }

    /// Whether the module at (`x`, `y`) is dark; coordinates include the quiet zone, so anything
    /// outside the code is light.
    fn dark(&self, x: usize, y: usize) -> bool {
        let (Some(x), Some(y)) = (x.checked_sub(QUIET_ZONE), y.checked_sub(QUIET_ZONE)) else {
            return false;
        };
        x < self.width && y < self.width && self.modules.get(y * self.width + x) == Some(&true)
    }

    /// An `<svg>` element (no XML declaration), black on white, with the quiet zone, sized
    /// [`Qr::image_px`] square: ready to inline in an HTML page.
    #[must_use]
    pub fn to_svg(&self) -> Zeroizing<String> {
        use core::fmt::Write;
        let side = self.width + 2 * QUIET_ZONE;
        let px = self.image_px();
        let mut svg = Zeroizing::new(String::with_capacity(256 + self.width * self.width * 8));
        // Writing to a String cannot fail.
        let _ = write!(
            svg,
            concat!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="{px}" height="{px}""#,
                r#" viewBox="0 0 {side} {side}" shape-rendering="crispEdges">"#,
                r##"<rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d=""##
            ),
            px = px,
            side = side,
        );
        for y in 0..self.width {
            let mut x = 0;
            while x < self.width {
                if self.modules[y * self.width + x] {
                    let start = x;
                    while x < self.width && self.modules[y * self.width + x] {
                        x += 1;
                    }
                    let _ = write!(
                        svg,
                        "M{} {}h{}v1H{}z",
                        start + QUIET_ZONE,
                        y + QUIET_ZONE,
                        x - start,
                        start + QUIET_ZONE
                    );
                } else {
                    x += 1;
                }
            }
        }
        svg.push_str(r#""/></svg>"#);
        svg
    }

    /// A grayscale PNG, black on white, with the quiet zone, [`Qr::image_px`] square.
    ///
    /// # Errors
    /// [`QrError::Png`] if the encoder fails (it writes to memory, so this indicates a bug).
    pub fn to_png(&self) -> Result<Zeroizing<Vec<u8>>, QrError> {
        let px = self.image_px();
        let scale = self.module_px as usize;
        let edge = u32::try_from(px).map_err(|_| QrError::InvalidModuleSize(self.module_px))?;
        let mut pixels = Zeroizing::new(vec![0xFFu8; px * px]);
        for (row, line) in pixels.chunks_exact_mut(px).enumerate() {
            let y = row / scale;
            for (col, pixel) in line.iter_mut().enumerate() {
                if self.dark(col / scale, y) {
                    *pixel = 0;
                }
            }
        }
        let mut out = Zeroizing::new(Vec::new());
        {
            let mut encoder = png::Encoder::new(&mut *out, edge, edge);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(QrError::Png)?;
            writer.write_image_data(&pixels).map_err(QrError::Png)?;
            writer.finish().map_err(QrError::Png)?;
        }
        Ok(out)
    }

    /// `data:image/png;base64,...`, for `<img src>` (what most web apps hand to their enrolment
    /// page).
    ///
    /// # Errors
    /// As [`Qr::to_png`].
    pub fn to_data_url(&self) -> Result<Zeroizing<String>, QrError> {
        let png = self.to_png()?;
        let prefix = "data:image/png;base64,";
        let mut url = Zeroizing::new(String::with_capacity(
            prefix.len() + BASE64.encode_len(png.len()),
        ));
        url.push_str(prefix);
        BASE64.encode_append(&png, &mut url);
        Ok(url)
    }

    /// The code drawn with Unicode half blocks (two modules per character cell, quiet zone
    /// included), dark modules as spaces on a light background, so it scans on dark and light
    /// terminals alike; one line per two module rows, each ending in `\n`.
    #[must_use]
    pub fn to_terminal(&self) -> Zeroizing<String> {
        let side = self.width + 2 * QUIET_ZONE;
        let mut out = Zeroizing::new(String::with_capacity((side + 1) * side.div_ceil(2) * 3));
        for y in (0..side).step_by(2) {
            for x in 0..side {
                // Light modules are drawn with the block glyph, dark ones left empty.
                let top_light = !self.dark(x, y);
                let bottom_light = y + 1 < side && !self.dark(x, y + 1);
                out.push(match (top_light, bottom_light) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_quiet_zone() {
        let qr = Qr::from_text("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(qr.image_px(), (qr.width() + 8) * 8);
        let svg = qr.to_svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        // The quiet zone is light; the top-left finder pattern starts dark at (4, 4).
        assert!(!qr.dark(3, 3) && qr.dark(4, 4));
        let term = qr.to_terminal();
        let side = qr.width() + 8;
        assert_eq!(term.lines().count(), side.div_ceil(2));
        assert!(term.lines().all(|l| l.chars().count() == side));
        assert!(term.lines().next().unwrap().chars().all(|c| c == '█'));
        assert!(matches!(
            qr.module_size(0),
            Err(QrError::InvalidModuleSize(0))
        ));
    }

    #[test]
    fn too_long() {
        assert!(matches!(
            Qr::from_text(&"A".repeat(5000)),
            Err(QrError::DataTooLong)
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let qr = Qr::from_text("otpauth://totp/x?secret=SECRETSECRET").unwrap();
        assert!(!format!("{qr:?}").contains("true"));
    }
}
