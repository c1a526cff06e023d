//! Rebuild waves: topological levels of the "must rebuild after" graph.
//!
//! Nodes are items; an edge `a → b` says b was built against a and must be rebuilt after it.
//! Strongly connected components (dependency cycles) are collapsed into one group, scheduled
//! in one wave; each component's wave is one more than the highest wave among the components
//! it depends on (the longest path), so a wave only waits for earlier ones.

/// The wave of every node (from 1) and, for nodes in a cycle, the index of their group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels {
    /// `wave[node]`, from 1.
    pub wave: Vec<u32>,
    /// `cycle[node]`: `Some(group)` when the node is in a cycle of two or more nodes.
    pub cycle: Vec<Option<u32>>,
    /// The members of each cycle group, by group index.
    pub groups: Vec<Vec<usize>>,
}

/// Compute waves for `n` nodes and `edges` (`(before, after)` pairs). Self-loops are ignored.
/// Iterative (no recursion), linear in nodes plus edges.
pub fn levels(n: usize, edges: &[(usize, usize)]) -> Levels {
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a != b && a < n && b < n {
            succ[a].push(b);
        }
    }
    for s in &mut succ {
        s.sort_unstable();
        s.dedup();
    }
    let comp = tarjan(&succ);
    let ncomp = comp.iter().copied().max().map_or(0, |m| m + 1);
    // Tarjan numbers components in reverse topological order: a component's successors have
    // smaller numbers. Walk from the highest number (sources first).
    let mut size = vec![0usize; ncomp];
    for &c in &comp {
        size[c] += 1;
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); ncomp];
    for (node, &c) in comp.iter().enumerate() {
        members[c].push(node);
    }
    let mut cwave = vec![1u32; ncomp];
    for c in (0..ncomp).rev() {
        for &node in &members[c] {
            for &next in &succ[node] {
                let d = comp[next];
                if d != c {
                    cwave[d] = cwave[d].max(cwave[c] + 1);
                }
            }
        }
    }
    let mut group_of = vec![None; ncomp];
    let mut groups = Vec::new();
    for c in (0..ncomp).rev() {
        if size[c] > 1 {
            group_of[c] = Some(groups.len() as u32);
            groups.push(members[c].clone());
        }
    }
    Levels {
        wave: comp.iter().map(|&c| cwave[c]).collect(),
        cycle: comp.iter().map(|&c| group_of[c]).collect(),
        groups,
    }
}

/// Tarjan's strongly connected components, iteratively. Returns the component of each node;
/// components are numbered in reverse topological order.
fn tarjan(succ: &[Vec<usize>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = succ.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![UNSEEN; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut next_comp = 0;
    // (node, position in its successor list)
    let mut call: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        call.push((root, 0));
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            if let Some(&w) = succ[v].get(*pos) {
                *pos += 1;
                if index[w] == UNSEEN {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp[w] = next_comp;
                        if w == v {
                            break;
                        }
                    }
                    next_comp += 1;
                }
            }
        }
    }
    comp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_gets_increasing_waves() {
        let l = levels(3, &[(0, 1), (1, 2)]);
        assert_eq!(l.wave, vec![1, 2, 3]);
        assert!(l.groups.is_empty());
    }

    #[test]
    fn longest_path_decides_the_wave() {
        // 0 → 1 → 3 and 0 → 3: 3 must wait for 1.
        let l = levels(4, &[(0, 1), (1, 3), (0, 3)]);
        assert_eq!(l.wave, vec![1, 2, 1, 3]);
    }

    #[test]
    fn cycles_are_one_group_in_one_wave() {
        // 0 → 1 ⇄ 2 → 3, and a self-loop on 3 that is ignored.
        let l = levels(4, &[(0, 1), (1, 2), (2, 1), (2, 3), (3, 3)]);
        assert_eq!(l.wave, vec![1, 2, 2, 3]);
        assert_eq!(l.groups, vec![vec![1, 2]]);
        assert_eq!(l.cycle, vec![None, Some(0), Some(0), None]);
    }

    #[test]
    fn deep_chains_do_not_recurse() {
        let n = 200_000;
        let edges: Vec<_> = (0..n - 1).map(|i| (i, i + 1)).collect();
        let l = levels(n, &edges);
        assert_eq!(l.wave[n - 1] as usize, n);
    }
}
