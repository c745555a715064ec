//! Fingerprints of static keys (`meshtalk_core::noise::Fingerprint`): the short
//! form people read aloud to check a peer's key out of band.

use meshtalk_core::noise::Fingerprint;

/// The key 00 01 02 .. 1f.
fn counting() -> [u8; 32] {
    core::array::from_fn(|i| i as u8)
}

#[test]
fn a_fingerprint_is_blake2s_of_the_label_and_key_in_crockford_base32() {
    // Computed independently with Python's hashlib:
    //   d = hashlib.blake2s(b"meshtalk fingerprint\0" + bytes(range(32))).digest()[:10]
    //   d.hex() == "68be59c9ba168ea16578"; as 16 digits of
    //   "0123456789abcdefghjkmnpqrstvwxyz", 5 bits each, most significant first,
    //   in groups of 4: "d2z5-kjdt-2t7a-2sbr".
    let fingerprint = Fingerprint::of(&counting());
    assert_eq!(
        fingerprint.as_bytes(),
        &[0x68, 0xbe, 0x59, 0xc9, 0xba, 0x16, 0x8e, 0xa1, 0x65, 0x78]
    );
    assert_eq!(fingerprint.to_string(), "d2z5-kjdt-2t7a-2sbr");
    // The same way, of 32 zero bytes.
    assert_eq!(Fingerprint::of(&[0; 32]).to_string(), "a3mc-7ycz-v1rw-7me1");
}

#[test]
fn a_fingerprint_is_four_groups_of_four_lowercase_crockford_digits() {
    for seed in 0..=255u8 {
        let text = Fingerprint::of(&[seed; 32]).to_string();
        assert_eq!(text.len(), 19, "{text}");
        let groups: Vec<&str> = text.split('-').collect();
        assert_eq!(groups.len(), 4, "{text}");
        for group in groups {
            assert_eq!(group.len(), 4, "{text}");
            assert!(
                group
                    .bytes()
                    .all(|c| b"0123456789abcdefghjkmnpqrstvwxyz".contains(&c)),
                "{text}"
            );
        }
    }
}

#[test]
fn distinct_keys_have_distinct_fingerprints() {
    let mut seen: Vec<Fingerprint> = (0..=255u8)
        .map(|seed| Fingerprint::of(&[seed; 32]))
        .collect();
    seen.sort_by_key(|f| *f.as_bytes());
    seen.dedup();
    assert_eq!(seen.len(), 256);
}

#[test]
fn one_flipped_bit_of_the_key_changes_the_fingerprint() {
    let key = counting();
    for bit in 0..256 {
        let mut other = key;
        other[bit / 8] ^= 1 << (bit % 8);
        assert_ne!(Fingerprint::of(&key), Fingerprint::of(&other), "bit {bit}");
    }
}

#[test]
fn the_same_key_always_has_the_same_fingerprint() {
    assert_eq!(Fingerprint::of(&counting()), Fingerprint::of(&counting()));
}
