import { Cluster } from 'spark-partition-server';

/** The seed's DemoCluster: a Cluster subclass with an application method that queries one partition. */
export class DemoCluster extends Cluster<number> {
  /** Fetches one partition's numbers over HTTP, straight from its server. */
  async getPartitionList(partition: number): Promise<number[]> {
    const { host, port } = this.hosts.get(partition)!;
    const text = await (await fetch(`http://${host}:${port}/app/get_list`)).text();
    return text === '' ? [] : text.split(',').map(Number);
  }
}
