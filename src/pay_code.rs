//! A payment link as a phone wallet reads it: a QR code, as a PNG file
//! (`.pushfs/payment.png`) or as Unicode half blocks for a terminal
//! (`pushfs status`).

use qrcode::render::unicode::Dense1x2;
use qrcode::{Color, EcLevel, QrCode};
use thiserror::Error;

/// Pixels per module: a 6 px module scans from a screen at arm's length.
pub const MODULE_PX: u32 = 6;
/// Light modules around the code, as the QR standard asks, so a camera
/// finds its edges on any background.
pub const QUIET_ZONE: u32 = 4;

#[derive(Debug, Error)]
pub enum PayCodeError {
    #[error("the payment link does not fit in a QR code: {0}")]
    TooLong(qrcode::types::QrError),
    #[error("cannot write the QR code as PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// Medium error correction: a phone reads a slightly blurred screen.
fn code(text: &str) -> Result<QrCode, PayCodeError> {
    QrCode::with_error_correction_level(text, EcLevel::M).map_err(PayCodeError::TooLong)
}

/// The QR code of `text` as an 8-bit greyscale PNG: black modules on
/// white, [`MODULE_PX`] pixels each, with a [`QUIET_ZONE`].
pub fn png(text: &str) -> Result<Vec<u8>, PayCodeError> {
    let code = code(text)?;
    let modules = code.width() as u32;
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * MODULE_PX;
    let mut pixels = vec![0xffu8; (side * side) as usize];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i as u32 % modules, i as u32 / modules);
        for dy in 0..MODULE_PX {
            let y = (my + QUIET_ZONE) * MODULE_PX + dy;
            let row = (y * side) as usize;
            let x0 = ((mx + QUIET_ZONE) * MODULE_PX) as usize;
            pixels[row + x0..row + x0 + MODULE_PX as usize].fill(0);
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    Ok(out)
}

/// The QR code of `text` in Unicode half blocks, two modules per
/// character cell, quiet zone included. The light modules are the printed
/// ones, as wallet CLIs do: on a terminal's dark background they show as
/// light and the dark modules stay dark, which is what a camera expects.
pub fn terminal(text: &str) -> Result<String, PayCodeError> {
    Ok(code(text)?
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "zel:?action=pay&coin=zelcash&address=t3NryfAQLGeFs9jEoeqsxmBN2QLRaRKFLUX&amount=0.63&message=3a1d88b73a1d88b73a1d88b73a1d88b73a1d88b73a1d88b73a1d88b73a1d88b7";

    fn decode(png_bytes: &[u8]) -> String {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the picture");
        grids[0].decode().unwrap().1
    }

    #[test]
    fn the_png_decodes_back_to_the_link() {
        let bytes = png(LINK).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(decode(&bytes), LINK);
    }

    #[test]
    fn the_terminal_code_is_half_blocks_with_a_quiet_zone() {
        let text = terminal(LINK).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 20, "{text}");
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{text}");
        assert!(text.chars().any(|c| c == '▀' || c == '▄'), "{text}");
        // The quiet zone is light: printed cells on the first line.
        assert!(lines[0].chars().all(|c| c == '█'), "{}", lines[0]);
    }
}
