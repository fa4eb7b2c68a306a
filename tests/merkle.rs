use ipow::contract::block::{BlockError, BlockHeader, contract_root, contract_tree};
use ipow::crypto::merkle::{
    InclusionProof, MerkleTree, ProofError, empty_root, leaf_hash, leaf_hash_32, node_hash,
    reference_root, root_32,
};
use sha2::{Digest, Sha256};

/// Certificate Transparency's reference leaves and the roots of their first n (RFC 6962).
const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const CT_ROOTS: [&str; 9] = [
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

fn ct_leaves() -> Vec<Vec<u8>> {
    CT_LEAVES.iter().map(|h| hex::decode(h).unwrap()).collect()
}

use crate::util::pool;

/// Deterministic 32-byte leaves: SHA-256 of the index.
fn leaves32(n: usize) -> Vec<[u8; 32]> {
    (0..n as u64)
        .map(|i| Sha256::digest(i.to_le_bytes()).into())
        .collect()
}

#[test]
fn rfc6962_known_answers() {
    // Empty tree, a leaf, a node.
    assert_eq!(hex::encode(empty_root()), CT_ROOTS[0]);
    assert_eq!(
        hex::encode(MerkleTree::from_leaves::<Vec<u8>>(&[]).root()),
        CT_ROOTS[0]
    );
    assert_eq!(hex::encode(leaf_hash(b"")), CT_ROOTS[1]);
    assert_eq!(
        hex::encode(leaf_hash(&[0x00])),
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
    );
    assert_eq!(
        hex::encode(node_hash(&leaf_hash(b""), &leaf_hash(&[0x00]))),
        CT_ROOTS[2]
    );
    let leaves = ct_leaves();
    for n in 0..=8 {
        assert_eq!(
            hex::encode(MerkleTree::from_leaves(&leaves[..n]).root()),
            CT_ROOTS[n],
            "size {n}"
        );
        assert_eq!(
            hex::encode(reference_root(&leaves[..n])),
            CT_ROOTS[n],
            "reference, size {n}"
        );
    }
}

#[test]
fn ct_inclusion_proof_vectors() {
    let tree = MerkleTree::from_leaves(&ct_leaves());
    let cases: [(usize, usize, &[&str]); 3] = [
        (
            8,
            0,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            1,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            3,
            2,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
    ];
    for (size, index, expected) in cases {
        let sub = MerkleTree::from_leaves(&ct_leaves()[..size]);
        let proof = sub.proof(index).unwrap();
        let path: Vec<String> = proof.path.iter().map(hex::encode).collect();
        assert_eq!(path, expected, "size {size} index {index}");
        proof
            .verify(sub.leaf(index).unwrap(), &sub.root(), size as u64)
            .unwrap();
    }
    assert!(tree.proof(8).is_none());
}

#[test]
fn fast_hashes_equal_the_plain_hasher() {
    for leaf in leaves32(64) {
        assert_eq!(leaf_hash_32(&leaf), leaf_hash(&leaf));
        let mut node_input = vec![0x01];
        node_input.extend_from_slice(&leaf);
        node_input.extend_from_slice(&leaf_hash(&leaf));
        let expected: [u8; 32] = Sha256::digest(&node_input).into();
        assert_eq!(node_hash(&leaf, &leaf_hash(&leaf)), expected);
    }
}

#[test]
fn parallel_root_equals_reference_for_every_size_to_1024_on_1_2_3_7_threads() {
    let all = leaves32(1024);
    let reference: Vec<[u8; 32]> = (0..=1024).map(|n| reference_root(&all[..n])).collect();
    for threads in [1, 2, 3, 7] {
        pool(threads).install(|| {
            for n in 0..=1024 {
                assert_eq!(
                    MerkleTree::from_leaves_32(&all[..n]).root(),
                    reference[n],
                    "size {n}, {threads} threads"
                );
            }
        });
    }
}

#[test]
fn parallel_root_equals_reference_for_random_sizes_to_a_million() {
    // Sizes drawn once from a fixed seed, so failures replay; the largest near 10^6.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut sizes = vec![1_000_000, 4097, 4096 * 3 + 1];
    for _ in 0..3 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sizes.push((x % 1_000_000) as usize + 1);
    }
    let all = leaves32(1_000_000);
    for n in sizes {
        let reference = reference_root(&all[..n]);
        for threads in [1, 2, 3, 7] {
            let (tree, root) = pool(threads).install(|| {
                (
                    MerkleTree::from_leaves_32(&all[..n]).root(),
                    root_32(&all[..n]),
                )
            });
            assert_eq!(tree, reference, "size {n}, {threads} threads");
            assert_eq!(root, reference, "root_32, size {n}, {threads} threads");
        }
    }
}

#[test]
fn appending_a_duplicate_of_the_last_leaf_changes_the_root() {
    // CVE-2012-2459: in Bitcoin's tree [a, b, c] and [a, b, c, c] share a root. Not here.
    for n in 1..=33 {
        let mut leaves = leaves32(n);
        let root = MerkleTree::from_leaves_32(&leaves).root();
        leaves.push(*leaves.last().unwrap());
        assert_ne!(MerkleTree::from_leaves_32(&leaves).root(), root, "size {n}");
    }
}

#[test]
fn a_node_is_not_a_leaf_of_its_concatenation() {
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    let mut concat = a.to_vec();
    concat.extend_from_slice(&b);
    assert_ne!(node_hash(&a, &b), leaf_hash(&concat));
    // And a one-leaf tree over the concatenation differs from the two-leaf tree.
    assert_ne!(MerkleTree::from_leaves(&[concat]).root(), node_hash(&a, &b));
}

#[test]
fn every_proof_verifies_and_tampered_proofs_fail() {
    // Regression: a path alone does not bind the size. Leaf 0's path in a 3-leaf tree runs the
    // RFC 9162 algorithm to the same root when read as size 4; only the header's count stops it.
    let three = MerkleTree::from_leaves_32(&leaves32(3));
    let p = three.proof(0).unwrap();
    let as_four = InclusionProof {
        tree_size: 4,
        ..p.clone()
    };
    assert!(
        as_four
            .verify(three.leaf(0).unwrap(), &three.root(), 4)
            .is_ok(),
        "the RFC algorithm alone accepts it"
    );
    assert!(
        as_four
            .verify(three.leaf(0).unwrap(), &three.root(), 3)
            .is_err(),
        "the header's count refuses it"
    );

    for n in 1..=70usize {
        let tree = MerkleTree::from_leaves_32(&leaves32(n));
        let root = tree.root();
        let size = n as u64;
        for i in 0..n {
            let proof = tree.proof(i).unwrap();
            let leaf = *tree.leaf(i).unwrap();
            proof.verify(&leaf, &root, size).unwrap();
            // A flipped bit anywhere in the path.
            for k in 0..proof.path.len() {
                let mut bad = proof.clone();
                bad.path[k][k % 32] ^= 0x80;
                assert!(
                    bad.verify(&leaf, &root, size).is_err(),
                    "n {n} i {i} path {k}"
                );
            }
            // A flipped bit in the leaf or the root.
            let mut bad_leaf = leaf;
            bad_leaf[31] ^= 1;
            assert!(proof.verify(&bad_leaf, &root, size).is_err());
            let mut bad_root = root;
            bad_root[0] ^= 1;
            assert_eq!(
                proof.verify(&leaf, &bad_root, size),
                Err(ProofError::RootMismatch)
            );
            // Wrong index.
            for wrong in [i + 1, i ^ 1, i.wrapping_sub(1)] {
                if wrong != i && wrong < n {
                    let bad = InclusionProof {
                        leaf_index: wrong as u64,
                        ..proof.clone()
                    };
                    assert!(
                        bad.verify(&leaf, &root, size).is_err(),
                        "n {n} i {i} as {wrong}"
                    );
                }
            }
            // Wrong tree size: refused against the header's count, whatever the path does.
            for wrong in [n - 1, n + 1, 2 * n] {
                let bad = InclusionProof {
                    tree_size: wrong as u64,
                    ..proof.clone()
                };
                assert!(
                    matches!(
                        bad.verify(&leaf, &root, size),
                        Err(ProofError::TreeSizeMismatch { .. })
                    ),
                    "n {n} i {i} size {wrong}"
                );
                // And a header that commits the wrong size rejects the honest proof.
                assert!(proof.verify(&leaf, &root, wrong as u64).is_err());
            }
            // A path with a hash dropped or added.
            if !proof.path.is_empty() {
                let mut short = proof.clone();
                short.path.pop();
                assert!(short.verify(&leaf, &root, size).is_err());
            }
            let mut long = proof.clone();
            long.path.push(root);
            assert!(long.verify(&leaf, &root, size).is_err());
        }
    }
    let out_of_range = InclusionProof {
        leaf_index: 3,
        tree_size: 3,
        path: vec![],
    };
    assert!(matches!(
        out_of_range.verify(&[0; 32], &[0; 32], 3),
        Err(ProofError::IndexOutOfRange { .. })
    ));
}

#[test]
fn diff_names_the_changed_leaves_and_their_paths_to_the_root() {
    for n in [1usize, 2, 3, 5, 9, 16, 17, 100, 1000] {
        let leaves = leaves32(n);
        let tree = MerkleTree::from_leaves_32(&leaves);
        assert!(tree.diff(&tree).unwrap().changed_nodes.is_empty());
        for &changed in &[0, n / 2, n - 1] {
            let mut tampered = leaves.clone();
            tampered[changed][0] ^= 1;
            let other = MerkleTree::from_leaves_32(&tampered);
            let diff = tree.diff(&other).unwrap();
            assert_eq!(diff.changed_leaves, vec![changed]);
            // One node per RFC level on the path: the audit path's length plus the leaf.
            assert_eq!(
                diff.changed_nodes.len(),
                tree.proof(changed).unwrap().path.len() + 1,
                "n {n} leaf {changed}"
            );
            for c in &diff.changed_nodes {
                assert!(
                    c.node.first_leaf <= changed && changed < c.node.end_leaf,
                    "{c:?}"
                );
                assert_ne!(c.before, c.after);
            }
            let top = diff.changed_nodes.last().unwrap();
            assert_eq!((top.node.first_leaf, top.node.end_leaf), (0, n));
            assert_eq!((top.before, top.after), (tree.root(), other.root()));
        }
        // Two leaves at once.
        if n >= 2 {
            let mut tampered = leaves.clone();
            tampered[0][5] ^= 1;
            tampered[n - 1][5] ^= 1;
            let diff = tree.diff(&MerkleTree::from_leaves_32(&tampered)).unwrap();
            assert_eq!(diff.changed_leaves, vec![0, n - 1]);
        }
    }
    let a = MerkleTree::from_leaves_32(&leaves32(3));
    assert!(a.diff(&MerkleTree::from_leaves_32(&leaves32(4))).is_err());
}

#[test]
fn a_header_commits_root_and_leaf_count() {
    let market = ipow::market::paper::PaperMarket::embedded().unwrap();
    let contracts: Vec<_> = market.contracts.iter().map(|c| c.signed.clone()).collect();
    let header = BlockHeader::seal(0, 0, [0; 32], &contracts);
    assert_eq!(header.leaf_count, 9);
    assert_eq!(header.merkle_root, contract_tree(&contracts).root());
    assert_eq!(header.merkle_root, contract_root(&contracts));
    header.check_contracts(&contracts).unwrap();
    assert!(matches!(
        header.check_contracts(&contracts[..8]),
        Err(BlockError::LeafCountMismatch {
            header: 9,
            actual: 8
        })
    ));
    let mut reordered = contracts.clone();
    reordered.swap(0, 1);
    assert!(matches!(
        header.check_contracts(&reordered),
        Err(BlockError::RootMismatch { .. })
    ));
    let mut tampered = contracts.clone();
    tampered[0].contract.energy = ipow::base::amount::Energy::parse("12.71").unwrap();
    assert!(matches!(
        header.check_contracts(&tampered),
        Err(BlockError::RootMismatch { .. })
    ));
    // Every header field is in the hash.
    let h = header.hash();
    for bad in [
        BlockHeader {
            height: 1,
            ..header
        },
        BlockHeader {
            period: 1,
            ..header
        },
        BlockHeader {
            prev_hash: [1; 32],
            ..header
        },
        BlockHeader {
            merkle_root: [1; 32],
            ..header
        },
        BlockHeader {
            leaf_count: 10,
            ..header
        },
    ] {
        assert_ne!(bad.hash(), h);
    }
}
