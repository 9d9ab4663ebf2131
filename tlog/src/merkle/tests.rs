//! Known-answer vectors and exhaustive proof properties.

use super::*;
use crate::encoding::b64_hash;

fn hex(s: &str) -> Hash {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn b64(s: &str) -> Hash {
    b64_hash(s).unwrap()
}

/// The eight leaf inputs of the RFC 6962 reference tree (Certificate Transparency's
/// `merkle_tree_test.cc`), as carried by transparency-dev/merkle `testonly/constants.go`
/// (`LeafInputs`).
const LEAF_INPUTS: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

fn reference_leaves() -> Vec<Hash> {
    LEAF_INPUTS.iter().map(|d| leaf_hash(d)).collect()
}

/// `n` distinct leaf hashes.
fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

#[test]
fn empty_root_is_sha256_of_nothing() {
    let digest: Hash = Sha256::digest(b"").into();
    assert_eq!(EMPTY_ROOT, digest);
    assert_eq!(root(&[]), EMPTY_ROOT);
    assert_eq!(Frontier::new().root(), EMPTY_ROOT);
}

/// Leaf hashes and roots of every prefix of the reference tree: transparency-dev/merkle
/// `testonly/constants.go` (`NodeHashes()[0]`, `RootHashes()`), the same values as CT's
/// `merkle_tree_test.cc` and trillian's tests.
#[test]
fn reference_tree_known_answers() {
    let leaf_kat = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ];
    let root_kat = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let leaves = reference_leaves();
    for (got, want) in leaves.iter().zip(leaf_kat) {
        assert_eq!(*got, hex(want));
    }
    let mut frontier = Frontier::new();
    for (n, want) in root_kat.iter().enumerate() {
        assert_eq!(root(&leaves[..n]), hex(want), "root of size {n}");
        assert_eq!(frontier.root(), hex(want), "frontier root of size {n}");
        if let Some(leaf) = leaves.get(n) {
            assert_eq!(frontier.push(*leaf).unwrap(), n as u64);
        }
    }
    // `CompactTrees()` of constants.go: size 7 is {nh[2][0], nh[1][2], nh[0][6]}.
    let mut seven = Frontier::new();
    for leaf in &leaves[..7] {
        seven.push(*leaf).unwrap();
    }
    assert_eq!(
        seven.nodes(),
        [
            hex("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            hex("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            hex("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        ]
    );
}

/// The happy-path inclusion probes of transparency-dev/merkle `testdata/inclusion/*/`
/// (`leafIdx`, `treeSize`, `proof`, over the reference tree).
#[test]
fn reference_inclusion_proofs() {
    let leaves = reference_leaves();
    let cases: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
            ],
        ),
        (
            5,
            8,
            &[
                "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
                "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
            ],
        ),
        (2, 3, &["+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="]),
        (
            1,
            5,
            &[
                "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
            ],
        ),
    ];
    for (index, size, want) in cases {
        let want: Vec<Hash> = want.iter().map(|s| b64(s)).collect();
        let proof = inclusion_proof(&leaves, index, size).unwrap();
        assert_eq!(proof, want, "proof of {index} in {size}");
        let r = root(&leaves[..size as usize]);
        verify_inclusion(&leaves[index as usize], index, size, &want, &r).unwrap();
    }
}

/// The happy-path consistency probes of transparency-dev/merkle `testdata/consistency/*/`
/// (`size1`, `size2`, `proof`, over the reference tree).
#[test]
fn reference_consistency_proofs() {
    let leaves = reference_leaves();
    let cases: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
            ],
        ),
        (
            6,
            8,
            &[
                "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
                "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
            ],
        ),
        (
            2,
            5,
            &[
                "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
                "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
            ],
        ),
        (
            6,
            7,
            &[
                "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
                "sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
                "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
            ],
        ),
    ];
    for (old, new, want) in cases {
        let want: Vec<Hash> = want.iter().map(|s| b64(s)).collect();
        let proof = consistency_proof(&leaves, old, new).unwrap();
        assert_eq!(proof, want, "proof from {old} to {new}");
        let (r1, r2) = (root(&leaves[..old as usize]), root(&leaves[..new as usize]));
        verify_consistency(old, new, &r1, &r2, &want).unwrap();
    }
}

/// transparency-dev/merkle `testdata/consistency/additional/*` where our types can say
/// them (roots are always 32 bytes here), plus the size-0 cases c2sp.org/tlog-witness
/// defines: from 0 the proof is empty and any new tree is consistent.
#[test]
fn consistency_edge_cases() {
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    let e = EMPTY_ROOT;
    assert_eq!(
        verify_consistency(2, 1, &a, &b, &[]),
        Err(Error::SizesOutOfOrder { old: 2, new: 1 })
    );
    assert_eq!(
        verify_consistency(1, 0, &a, &e, &[]),
        Err(Error::SizesOutOfOrder { old: 1, new: 0 })
    );
    assert_eq!(verify_consistency(1, 1, &a, &a, &[]), Ok(()));
    assert_eq!(
        verify_consistency(1, 1, &a, &b, &[]),
        Err(Error::RootMismatch)
    );
    assert_eq!(
        verify_consistency(1, 1, &e, &e, &[e]),
        Err(Error::ProofLength { got: 1, want: 0 })
    );
    assert!(verify_consistency(1, 2, &a, &b, &[]).is_err());
    // Size 0.
    assert_eq!(verify_consistency(0, 0, &e, &e, &[]), Ok(()));
    assert_eq!(
        verify_consistency(0, 0, &a, &a, &[]),
        Err(Error::RootMismatch)
    );
    assert_eq!(
        verify_consistency(0, 0, &e, &a, &[]),
        Err(Error::RootMismatch)
    );
    assert!(verify_consistency(0, 0, &e, &e, &[e]).is_err());
    assert_eq!(verify_consistency(0, 5, &e, &a, &[]), Ok(()));
    assert_eq!(
        verify_consistency(0, 5, &a, &b, &[]),
        Err(Error::RootMismatch)
    );
    assert!(verify_consistency(0, 1, &e, &e, &[e]).is_err());
    // Generation.
    let l = leaves(4);
    assert_eq!(consistency_proof(&l, 0, 4).unwrap(), Vec::<Hash>::new());
    assert_eq!(consistency_proof(&l, 3, 3).unwrap(), Vec::<Hash>::new());
    assert_eq!(
        consistency_proof(&l, 3, 2),
        Err(Error::SizesOutOfOrder { old: 3, new: 2 })
    );
    assert_eq!(
        consistency_proof(&l, 1, 5),
        Err(Error::SizeBeyondLeaves {
            size: 5,
            available: 4
        })
    );
    assert_eq!(
        inclusion_proof(&l, 4, 4),
        Err(Error::IndexOutOfRange { index: 4, size: 4 })
    );
    assert_eq!(
        inclusion_proof(&l, 0, 0),
        Err(Error::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        verify_inclusion(&l[0], 0, 0, &[], &e),
        Err(Error::IndexOutOfRange { index: 0, size: 0 })
    );
}

/// Huge sizes from a peer neither panic nor loop: the length check rejects them.
#[test]
fn huge_sizes_are_rejected_not_panicked_on() {
    let h = leaf_hash(b"x");
    for (index, size) in [(u64::MAX - 1, u64::MAX), (0, u64::MAX), (1 << 63, u64::MAX)] {
        assert!(matches!(
            verify_inclusion(&h, index, size, &[h; 3], &h),
            Err(Error::ProofLength { .. })
        ));
    }
    for (old, new) in [(1, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
        assert!(matches!(
            verify_consistency(old, new, &h, &h, &[h; 3]),
            Err(Error::ProofLength { .. })
        ));
    }
    let mut f: Frontier = format!(
        "{} {}",
        u64::MAX,
        vec!["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; 64].join(" ")
    )
    .parse()
    .unwrap();
    assert_eq!(f.push(h), Err(Error::TreeFull));
}

/// Bits to flip in each proof hash: all 256 for small trees, a spread of 16 otherwise
/// (the exhaustive run over all sizes stays fast in debug builds).
fn bits_to_flip(size: u64) -> Vec<usize> {
    if size <= 12 {
        (0..256).collect()
    } else {
        (0..16).map(|i| i * 16 + (size as usize + i) % 16).collect()
    }
}

fn flipped(proof: &[Hash], element: usize, bit: usize) -> Vec<Hash> {
    let mut p = proof.to_vec();
    p[element][bit / 8] ^= 1 << (bit % 8);
    p
}

#[test]
fn inclusion_proofs_verify_and_every_tampering_fails() {
    const MAX: u64 = 64;
    let all = leaves(MAX + 1);
    let roots: Vec<Hash> = (0..=MAX + 1).map(|n| root(&all[..n as usize])).collect();
    let extra = leaf_hash(b"extra");
    for size in 1..=MAX {
        let r = &roots[size as usize];
        for index in 0..size {
            let leaf = &all[index as usize];
            let proof = inclusion_proof(&all, index, size).unwrap();
            assert_eq!(proof.len(), inclusion_proof_len(index, size));
            verify_inclusion(leaf, index, size, &proof, r).unwrap();

            let fails = |l: &Hash, i: u64, s: u64, p: &[Hash], r: &Hash| {
                assert!(
                    verify_inclusion(l, i, s, p, r).is_err(),
                    "tampered proof of {index} in {size} verified"
                );
            };
            for e in 0..proof.len() {
                for bit in bits_to_flip(size) {
                    fails(leaf, index, size, &flipped(&proof, e, bit), r);
                }
            }
            for other in (0..=MAX).filter(|i| *i != index) {
                fails(leaf, other, size, &proof, r);
            }
            for other in (1..=MAX + 1).filter(|s| *s != size) {
                fails(leaf, index, other, &proof, &roots[other as usize]);
            }
            fails(&extra, index, size, &proof, r);
            fails(leaf, index, size, &proof, &roots[size as usize - 1]);
            if let Some((_, head)) = proof.split_last() {
                fails(leaf, index, size, head, r);
                fails(leaf, index, size, &proof[1..], r);
            }
            let mut longer = proof.clone();
            longer.push(extra);
            fails(leaf, index, size, &longer, r);
            longer.rotate_right(1);
            fails(leaf, index, size, &longer, r);
        }
    }
}

#[test]
fn consistency_proofs_verify_and_every_tampering_fails() {
    const MAX: u64 = 64;
    let all = leaves(MAX);
    let roots: Vec<Hash> = (0..=MAX).map(|n| root(&all[..n as usize])).collect();
    let extra = leaf_hash(b"extra");
    for new in 1..=MAX {
        let r2 = &roots[new as usize];
        for old in 0..=new {
            let r1 = &roots[old as usize];
            let proof = consistency_proof(&all, old, new).unwrap();
            verify_consistency(old, new, r1, r2, &proof).unwrap();
            if old == 0 || old == new {
                assert!(proof.is_empty());
            } else {
                assert_eq!(proof.len(), consistency_proof_len(old, new));
            }

            let fails = |o: u64, n: u64, a: &Hash, b: &Hash, p: &[Hash]| {
                assert!(
                    verify_consistency(o, n, a, b, p).is_err(),
                    "tampered proof from {old} to {new} verified"
                );
            };
            for e in 0..proof.len() {
                for bit in bits_to_flip(new) {
                    fails(old, new, r1, r2, &flipped(&proof, e, bit));
                }
            }
            if old > 0 {
                // Wrong roots: of another size, or off by one bit.
                fails(old, new, &roots[old as usize - 1], r2, &proof);
                fails(old, new, r1, &roots[new as usize - 1], &proof);
                fails(old, new, r1, &flipped(&[*r2], 0, 7)[0], &proof);
                fails(old, new, &flipped(&[*r1], 0, 200)[0], r2, &proof);
                for other in (1..=new).filter(|o| *o != old) {
                    fails(other, new, &roots[other as usize], r2, &proof);
                }
                // (From size 0 every new tree is consistent: nothing to get wrong.)
                for other in (old..=MAX).filter(|n| *n != new) {
                    fails(old, other, r1, &roots[other as usize], &proof);
                }
            }
            if let Some((_, head)) = proof.split_last() {
                fails(old, new, r1, r2, head);
                fails(old, new, r1, r2, &proof[1..]);
            }
            let mut longer = proof.clone();
            longer.push(extra);
            fails(old, new, r1, r2, &longer);
            longer.rotate_right(1);
            fails(old, new, r1, r2, &longer);
        }
    }
}

#[test]
fn frontier_matches_root_at_every_size_and_round_trips() {
    let all = leaves(300);
    let mut f = Frontier::new();
    for n in 0..=all.len() {
        assert_eq!(f.size(), n as u64);
        assert_eq!(f.root(), root(&all[..n]), "size {n}");
        assert_eq!(f.nodes().len(), n.count_ones() as usize);
        let text = f.to_string();
        assert_eq!(text.parse::<Frontier>().unwrap(), f);
        if let Some(leaf) = all.get(n) {
            f.push(*leaf).unwrap();
        }
    }
}

#[test]
fn frontier_strings_are_checked() {
    let h = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    assert_eq!("0".parse::<Frontier>().unwrap(), Frontier::new());
    assert_eq!(format!("3 {h} {h}").parse::<Frontier>().unwrap().size(), 3);
    for bad in [
        String::new(),
        "1".into(),
        format!("1 {h} {h}"),
        format!("01 {h}"),
        format!("1  {h}"),
        format!("1 {h} "),
        format!("1 {}", &h[..43]),
        format!(" 1 {h}"),
        "x".repeat(MAX_FRONTIER_TEST_LEN),
    ] {
        assert!(bad.parse::<Frontier>().is_err(), "{bad:?}");
    }
}

const MAX_FRONTIER_TEST_LEN: usize = 10_000;
