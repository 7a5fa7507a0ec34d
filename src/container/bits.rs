// SPDX-License-Identifier: MPL-2.0

//! Reading a bitstream most significant bit first, as MPEG-4 audio's
//! configurations (AudioSpecificConfig, LATM's StreamMuxConfig) are written.

/// Reads bits, most significant first.
pub struct BitReader<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, position: 0 }
    }

    /// The next `count` bits (at most 32) as a number; None past the end.
    pub fn read(&mut self, count: u32) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..count {
            let byte = *self.data.get(self.position / 8)?;
            let bit = (byte >> (7 - self.position % 8)) & 1;
            value = value << 1 | u32::from(bit);
            self.position += 1;
        }
        Some(value)
    }

    /// How many bits have been read.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Goes on from bit `position`.
    pub fn seek(&mut self, position: usize) {
        self.position = position;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_read_most_significant_first_across_bytes() {
        let mut bits = BitReader::new(&[0b1010_0000, 0b1100_0000]);
        assert_eq!(bits.read(3), Some(0b101));
        assert_eq!(bits.read(7), Some(0b000_0011));
        assert_eq!(bits.position(), 10);
        bits.seek(8);
        assert_eq!(bits.read(2), Some(0b11));
        assert_eq!(bits.read(7), None, "past the end");
    }
}
