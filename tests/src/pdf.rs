//! Reading back the PDFs the engine lays out: their text (pdf-extract), and which
//! glyphs stand for which characters (each font's `ToUnicode` map, read with lopdf) —
//! shaped Arabic uses several glyphs for one letter (its initial, medial, final
//! forms), unshaped text one.

use std::collections::{BTreeMap, BTreeSet};

/// The text of a PDF, in reading order as pdf-extract finds it.
pub fn text(pdf: &[u8]) -> String {
    pdf_extract::extract_text_from_mem(pdf).unwrap_or_else(|e| panic!("the PDF's text: {e}"))
}

/// How many pages it has.
pub fn pages(pdf: &[u8]) -> usize {
    lopdf::Document::load_mem(pdf).unwrap_or_else(|e| panic!("a PDF: {e}")).get_pages().len()
}

/// For each font (by its base name) and each character: the glyphs (CIDs) its
/// `ToUnicode` map gives for it.
pub fn glyphs_by_char(pdf: &[u8]) -> BTreeMap<String, BTreeMap<char, BTreeSet<u32>>> {
    let doc = lopdf::Document::load_mem(pdf).unwrap_or_else(|e| panic!("a PDF: {e}"));
    let mut out: BTreeMap<String, BTreeMap<char, BTreeSet<u32>>> = BTreeMap::new();
    for obj in doc.objects.values() {
        let Ok(dict) = obj.as_dict() else { continue };
        if dict.get(b"Type").and_then(|t| t.as_name()).ok() != Some(b"Font".as_slice()) {
            continue;
        }
        let Ok(to_unicode) = dict.get(b"ToUnicode").and_then(|r| r.as_reference()) else { continue };
        let name = dict
            .get(b"BaseFont")
            .and_then(|n| n.as_name())
            .map(|n| String::from_utf8_lossy(n).to_string())
            .unwrap_or_default();
        let Ok(stream) = doc.get_object(to_unicode).and_then(|s| s.as_stream()) else { continue };
        let content = stream.decompressed_content().unwrap_or_else(|_| stream.content.clone());
        let map = out.entry(name).or_default();
        for (cid, text) in cmap_entries(&String::from_utf8_lossy(&content)) {
            for c in text.chars() {
                map.entry(c).or_default().insert(cid);
            }
        }
    }
    out
}

fn hex_utf16(s: &str) -> String {
    let units: Vec<u16> = s
        .as_bytes()
        .chunks(4)
        .filter_map(|c| std::str::from_utf8(c).ok().and_then(|h| u16::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf16_lossy(&units)
}

/// The `bfchar` and `bfrange` entries of a CMap: (CID, its text).
fn cmap_entries(cmap: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let tokens: Vec<&str> =
        cmap.split(|c: char| c == '<' || c == '>' || c.is_whitespace()).filter(|t| !t.is_empty()).collect();
    let mut i = 0;
    let mut mode = "";
    while i < tokens.len() {
        match tokens[i] {
            "beginbfchar" => mode = "char",
            "beginbfrange" => mode = "range",
            "endbfchar" | "endbfrange" => mode = "",
            t if mode == "char" && i + 1 < tokens.len() => {
                if let Ok(cid) = u32::from_str_radix(t, 16) {
                    out.push((cid, hex_utf16(tokens[i + 1])));
                }
                i += 1;
            }
            t if mode == "range" && i + 2 < tokens.len() => {
                if let (Ok(lo), Ok(hi)) = (u32::from_str_radix(t, 16), u32::from_str_radix(tokens[i + 1], 16)) {
                    let first = hex_utf16(tokens[i + 2]);
                    if let Some(c) = first.chars().next() {
                        for (k, cid) in (lo..=hi).enumerate() {
                            let ch = char::from_u32(c as u32 + k as u32).unwrap_or(c);
                            out.push((cid, ch.to_string()));
                        }
                    }
                }
                i += 2;
            }
            _ => {}
        }
        i += 1;
    }
    out
}
